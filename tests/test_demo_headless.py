"""`tracekit demo --headless` with nothing but tracekit installed: the in-process broker, a
collector it starts itself, both workflow styles and several scenarios in the store."""

from __future__ import annotations

import json

from conftest import tracekit
from demo_store import rows, unconsumed


def test_headless_demo_stores_flows_of_both_styles_and_several_scenarios(tmp_path):
    db = tmp_path / "demo.duckdb"
    result = tracekit("demo", "--headless", "--duration", "30", "--db", str(db), "--json")
    summary = json.loads(result.stdout)
    assert summary["broker"] == "in-process"
    faults = set(summary["scenarios_recorded"]) - {"healthy"}
    assert len(faults) >= 2, summary
    assert b"flows started" in result.stderr   # live progress while it runs

    styles = {r["style"]: r["n"] for r in rows(db, "SELECT style, count(*) AS n FROM demo_flows GROUP BY ALL")}
    assert styles.keys() >= {"orchestrated", "choreographed"}
    # Orchestrated: the saga's synchronous calls. Choreographed: events through the broker.
    [counts] = rows(db, """SELECT count(*) FILTER (name = 'saga place-order') AS sagas,
                                  count(*) FILTER (kind = 'CONSUMER'
                                      AND attributes['messaging.system']::VARCHAR = 'inprocess') AS consumed
                           FROM spans""")
    assert counts["sagas"] > 0 and counts["consumed"] > 0
    assert unconsumed(db) == []
    recorded = {r["scenario"] for r in rows(db, "SELECT DISTINCT scenario FROM demo_faults")}
    assert recorded and recorded <= faults
