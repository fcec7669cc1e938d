"""`tracekit analyze --lake URI --engine spark`: the flow analysis on Spark (local mode) over the
lake, whose tables must equal those `tracekit analyze` keeps in a local store of the same spans.

Needs Java and pyspark (the `spark` extra, which the `test` extra includes): skipped without
them, except in CI (CI=true), where their absence fails the test.
"""

from __future__ import annotations

import datetime
import decimal
import json
import math
import os
import shutil

import duckdb
import pytest

from tests.conftest import tracekit as run_tracekit
from tests.span_documents import request, span, write
from tests.test_lake import lake  # noqa: F401 (a fixture: a PostgreSQL catalog of its own)
from tracekit.lake.location import LakeLocation
from tracekit.lake.shipping import Shipper
from tracekit.lake.spark_analysis import read_analysis
from tracekit.lake.tables import ANALYSIS_TABLES


def _require_spark() -> None:
    why = None
    try:
        import pyspark  # noqa: F401
    except ImportError:
        why = "pyspark is not installed (pip install -e '.[spark]')"
    if why is None and shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        why = "no Java (Spark needs Java 17 or later)"
    if why is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{why}: CI runs the Spark analysis")
    pytest.skip(why)


def _microsecond_copy(db, tmp_path):
    """A copy of the store with span times cut to microseconds, as the lake holds them
    (Iceberg v2 has no nanoseconds), analyzed by `tracekit analyze --rebuild`."""
    copy = tmp_path / "store.duckdb"
    shutil.copy(db, copy)
    conn = duckdb.connect(str(copy))
    try:
        conn.execute("UPDATE span_rows SET start_time = start_time::TIMESTAMP::TIMESTAMP_NS, "
                     "end_time = end_time::TIMESTAMP::TIMESTAMP_NS")
    finally:
        conn.close()
    run_tracekit("analyze", "--rebuild", "--db", str(copy), timeout=300)
    return copy


def _ship(db, uri: str) -> int:
    conn = duckdb.connect(str(db), read_only=True)
    try:
        return Shipper(LakeLocation.parse(uri), db, lambda: conn.cursor()).ship()
    finally:
        conn.close()


def _plain(value):
    """A value both engines' rows compare on: times in microseconds, floats to 9 digits,
    lists and structs as tuples."""
    if isinstance(value, datetime.datetime):
        return value.replace(tzinfo=None).isoformat(timespec="microseconds")
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 9)
    if isinstance(value, decimal.Decimal):
        return int(value)
    if isinstance(value, list):
        return tuple(_plain(v) for v in value)
    if isinstance(value, dict):
        return tuple((k, _plain(v)) for k, v in value.items())
    return value


def _rows(table) -> list[tuple]:
    return sorted((tuple(_plain(v) for v in row.values()) for row in table.to_pylist()), key=repr)


def test_spark_analysis_of_the_lake_equals_the_duckdb_analysis_of_the_same_spans(
        rabbitmq_demo_run, lake, tmp_path):  # noqa: F811
    _require_spark()
    local = _microsecond_copy(rabbitmq_demo_run["db"], tmp_path)
    assert _ship(local, lake) > 0

    # Small tasks: the flows spread over many partitions, as they would on a cluster.
    result = run_tracekit("analyze", "--lake", lake, "--engine", "spark", "--spark-master",
                          "local[2]", "--spark-task-spans", "4000", "--json", timeout=900)
    summary = json.loads(result.stdout)
    assert summary["tasks"] > 4
    print(f"\nSpark analysis of {summary['spans']:,} spans: {summary['seconds']}")

    assert_lake_analysis_equals_store(lake, local)
    assert summary["flows"] == len(read_analysis(LakeLocation.parse(lake))["flow_rows"])
    assert_commands_read_the_lake_as_the_store(lake, local, rabbitmq_demo_run["truth"])
    assert_the_terminal_ui_shows_the_lakes_flows(lake, local, tmp_path / "sql_history")


def assert_commands_read_the_lake_as_the_store(lake: str, db, truth: dict) -> None:
    """`flows`, `flow ID`, `services`, `causes` and `report` with --lake answer as they do on
    the local store of the same spans (the lake's analysis is Spark's)."""
    def both(*command: str):
        answers = [json.loads(run_tracekit(*command, *where, timeout=300).stdout)
                   for where in (("--lake", lake), ("--db", str(db)))]
        return answers

    on_lake, on_store = both("flows", "--json", "--limit", "1000")
    assert on_lake == on_store and len(on_lake) > 100
    failed = next(f["flow_id"] for f in on_store if f["status"] == "failed")
    on_lake, on_store = both("flow", failed, "--json")
    assert on_lake == on_store and on_lake["failure_origin"]
    on_lake, on_store = both("services", "--json")
    assert on_lake == on_store
    [scenario] = [s for s in truth["scenarios"] if s["scenario"] == "payment-failure"][:1]
    window = ("--from", str(scenario["started_at"]), "--to", str(scenario["ended_at"]))
    on_lake, on_store = both("causes", *window, "--json")
    assert on_lake["causes"] == on_store["causes"] and on_lake["causes"]
    on_lake, on_store = both("report", *window, "--format", "json")
    assert (on_lake["title"], on_lake["summary"]) == (on_store["title"], on_store["summary"])
    assert on_lake["suspects"] == on_store["suspects"]


def test_spark_stitches_link_chains_message_ids_and_business_keys_as_the_store_does(
        lake, tmp_path):  # noqa: F811
    """Traces joined only by a chain of links (several rounds of label propagation), a
    message id without links, a business key three traces share (one flow), and one that 70
    traces share (too generic: 70 flows), spread over many small tasks."""
    _require_spark()
    chain = [f"{n:032x}" for n in range(1, 6)]
    spans = [span(chain[0], "1" * 16, "publish", kind=4)]
    spans += [span(trace, f"{n + 2:016x}", "handle", kind=5, start_ms=10 * (n + 1),
                   links=[(chain[n], "1" * 16 if n == 0 else f"{n + 1:016x}")])
              for n, trace in enumerate(chain[1:])]
    spans += [span("a" * 32, "a" * 16, "send order.paid", kind=4,
                   attributes={"messaging.message.id": "m-1"})]
    spans += [span(f"{'b' * 31}{n}", f"{'b' * 15}{n}", "receive order.paid", kind=5, start_ms=5,
                   attributes={"messaging.message.id": "m-1"}) for n in range(2)]
    spans += [span(f"{'c' * 31}{n}", f"{'c' * 15}{n}", "POST /orders", start_ms=n,
                   attributes={"order.id": "o-3"}) for n in range(3)]
    spans += [span(f"d{n:031x}", f"d{n:015x}", "GET /cart", start_ms=n,
                   attributes={"order.id": "o-everyone"}) for n in range(70)]
    db = tmp_path / "made.duckdb"
    run_tracekit("import", "--db", str(db), str(write(tmp_path / "spans.jsonl", request("shop", spans))))
    assert _ship(db, lake) > 0

    result = run_tracekit("analyze", "--lake", lake, "--engine", "spark", "--spark-master",
                          "local[2]", "--spark-task-spans", "10", "--json", timeout=900)
    summary = json.loads(result.stdout)
    assert summary["tasks"] >= 8 and summary["flows"] == 1 + 1 + 1 + 70
    assert summary["rounds"] >= 4     # the chain: a label moves one link a round
    assert_lake_analysis_equals_store(lake, db)


def assert_lake_analysis_equals_store(lake: str, db) -> None:  # noqa: F811
    """Every analysis table of the lake holds the rows of the store's, whatever their order."""
    spark_tables = read_analysis(LakeLocation.parse(lake))
    conn = duckdb.connect(str(db), read_only=True)
    try:
        for name in ANALYSIS_TABLES:   # names from a fixed list
            expected = conn.sql(f"SELECT * FROM {name}").to_arrow_table()
            got = spark_tables[name].select(expected.column_names)
            assert _rows(got) == _rows(expected), f"{name} differs"
    finally:
        conn.close()


def test_the_spark_engine_is_for_a_lake_and_says_how_to_ask_for_it(tmp_path):
    result = run_tracekit("analyze", "--engine", "spark", "--db", str(tmp_path / "x.duckdb"),
                          check=False)
    assert result.returncode == 2, result.stderr
    assert b"--lake URI --engine spark" in result.stderr


def assert_the_terminal_ui_shows_the_lakes_flows(lake: str, db, history) -> None:
    """`tracekit tui --lake URI`: the overview lists the lake's flow types and flows, as many
    as the store of the same spans holds."""
    import asyncio

    from tests.tui_data.screen import screen_text, settle
    from tui.app import make_app

    async def overview() -> str:
        app = make_app(db, live_interval=None, window="all", lake=lake, sql_history=history)
        async with app.run_test(size=(140, 44)) as pilot:
            await settle(pilot, lambda: app.revision is not None)
            return screen_text(app)

    screen = asyncio.run(overview())
    conn = duckdb.connect(str(db), read_only=True)
    try:
        [(types, flows)] = conn.execute("SELECT (SELECT count(*) FROM flow_types), "
                                        "(SELECT count(*) FROM flows)").fetchall()
    finally:
        conn.close()
    assert "lake postgresql://" in screen and "shopper order" in screen
    assert f"{types} flow types" in screen and f"{flows:,} flows" in screen, screen
