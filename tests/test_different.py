"""What is different about the failing and slow flows: attribute values over-represented in
them, in `causes` and in the report (stores made for the behaviour)."""

from __future__ import annotations

import json

from conftest import tracekit
from span_documents import T0, request, span, write

GOOD, BAD = "payment-7c9f-a", "payment-7c9f-b"


def _store(tmp_path) -> str:
    """Checkouts served by two payment pods, 120 of them over two minutes. In the second
    minute, pod b (version 2.1.0, just deployed) fails gold customers' charges; pod a
    (2.0.3) and everything in the first minute work."""
    frontend, pods = [], {GOOD: [], BAD: []}
    for i in range(120):
        at_ms = i * 1000
        pod = BAD if i % 2 else GOOD
        tier = "gold" if i % 4 in (1, 2) else "silver"
        failed = at_ms >= 60_000 and pod == BAD and tier == "gold"
        trace, root, call = f"{i + 1:032x}", f"{i + 1:08x}00000001", f"{i + 1:08x}00000002"
        frontend += [span(trace, root, "POST /checkout", start_ms=at_ms, duration_ms=30, error=failed,
                          attributes={"customer.tier": tier, "order.id": f"o-{i}"}),
                     span(trace, call, "POST", kind=3, parent=root, start_ms=at_ms + 2, duration_ms=20,
                          attributes={"server.address": "payment"}, error=failed)]
        pods[pod].append(span(trace, f"{i + 1:08x}00000003", "POST /charge", parent=call,
                              start_ms=at_ms + 4, duration_ms=15, error=failed))
    documents = [request("frontend", frontend, {"service.version": "1.0.0"}),
                 request("payment", pods[GOOD], {"service.version": "2.0.3", "k8s.pod.name": GOOD}),
                 request("payment", pods[BAD], {"service.version": "2.1.0", "k8s.pod.name": BAD})]
    db = tmp_path / "store.duckdb"
    tracekit("import", "--db", str(db), str(write(tmp_path / "spans.jsonl", *documents)))
    return str(db)


def _at(db: str, seconds: int) -> str:
    ns = T0 + seconds * 10**9
    return json.loads(tracekit("sql", "--db", db, "--format", "json",
                               f"SELECT make_timestamp_ns({ns})::VARCHAR AS t").stdout)[0]["t"]


def test_causes_name_the_attribute_values_the_failing_flows_share(tmp_path):
    db = _store(tmp_path)
    out = json.loads(tracekit("causes", "--db", db, "--from", _at(db, 60), "--to", _at(db, 120),
                              "--baseline-from", _at(db, 0), "--baseline-to", _at(db, 60),
                              "--json").stdout)
    different = {(d["attribute"], d["value"]): d for d in out["different"]}
    # All 15 failing flows ran on pod b, version 2.1.0, for gold customers; of the other 105
    # flows, about half ran on pod b and half were gold.
    for key in [("k8s.pod.name", BAD), ("service.version", "2.1.0"), ("customer.tier", "gold")]:
        assert key in different, out["different"]
        assert (different[key]["flows"], different[key]["of_flows"]) == (15, 15)
        assert different[key]["other_share"] < 0.5
    assert different[("customer.tier", "gold")]["source"] == "span"
    assert different[("k8s.pod.name", BAD)]["source"] == "resource"
    # What every flow has, or what tells one flow from another, is not a difference.
    assert not {attribute for attribute, _ in different} & {"service.name", "order.id"}
    assert ("service.version", "1.0.0") not in different


def test_the_report_has_a_section_on_what_is_different(tmp_path):
    db = _store(tmp_path)
    md = tracekit("report", "--db", db, "--from", _at(db, 60), "--to", _at(db, 120),
                  "--baseline-from", _at(db, 0), "--baseline-to", _at(db, 60)).stdout.decode()
    section = md.split("## What is different", 1)[1].split("\n## ", 1)[0]
    assert f"| `k8s.pod.name` | {BAD} | resource | 15 of 15 (100%) |" in section
    report = json.loads(tracekit("report", "--db", db, "--from", _at(db, 60), "--to", _at(db, 120),
                                 "--format", "json").stdout)
    assert ("service.version", "2.1.0") in {(d["attribute"], d["value"]) for d in report["differences"]}


def test_the_tuis_failures_view_shows_what_is_different(tmp_path, monkeypatch):
    import asyncio

    from tests.tui_data.screen import screen_text, settle
    from tui.app import make_app

    _store(tmp_path)
    monkeypatch.chdir(tmp_path)

    async def scenario():
        app = make_app("store.duckdb", live_interval=None)
        async with app.run_test(size=(160, 50)) as pilot:
            await settle(pilot, lambda: app.revision is not None)
            await pilot.press("3")                  # the failures view
            await settle(pilot, lambda: "What is different" in screen_text(app)
                         or "No clear cause" in screen_text(app))
            return screen_text(app)

    screen = asyncio.run(scenario())
    assert "What is different in the failing and slow flows" in screen, screen
    assert f"k8s.pod.name = {BAD} (resource): 15 of 15" in screen
