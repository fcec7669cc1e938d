"""What is different about the failing and slow flows: attribute values over-represented in
them, in `causes` and in the report (stores made for the behaviour)."""

from __future__ import annotations

import json

from conftest import tracekit
from span_documents import T0, request, span, when, write

GOOD, BAD = "payment-7c9f-a", "payment-7c9f-b"


def _store(tmp_path, fault_from_s: int = 60, every_ms: int = 1000) -> str:
    """Checkouts served by two payment pods, one every `every_ms` for two minutes. From
    `fault_from_s` on, pod b (version 2.1.0, just deployed) fails gold customers' charges;
    pod a (2.0.3) and everything before work."""
    frontend, pods = [], {GOOD: [], BAD: []}
    for i in range(120_000 // every_ms):
        at_ms = i * every_ms
        pod = BAD if i % 2 else GOOD
        tier = "gold" if i % 4 in (1, 2) else "silver"
        failed = at_ms >= fault_from_s * 1000 and pod == BAD and tier == "gold"
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



def test_causes_name_the_attribute_values_the_failing_flows_share(tmp_path):
    db = _store(tmp_path)
    out = json.loads(tracekit("causes", "--db", db, "--from", when(60), "--to", when(120),
                              "--baseline-from", when(0), "--baseline-to", when(60),
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
    md = tracekit("report", "--db", db, "--from", when(60), "--to", when(120),
                  "--baseline-from", when(0), "--baseline-to", when(60)).stdout.decode()
    section = md.split("## What is different", 1)[1].split("\n## ", 1)[0]
    assert f"| `k8s.pod.name` | {BAD} | resource | 15 of 15 (100%) |" in section
    report = json.loads(tracekit("report", "--db", db, "--from", when(60), "--to", when(120),
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


def test_the_tuis_failures_compare_the_incident_with_before_it_not_half_with_half(tmp_path):
    """The fault began 40 s into two minutes of data: the newer half against the older would
    have the fault on both sides. The failures view ranks the window the report's detection
    finds, against as long before it."""
    import tracekit
    from tui import window_data

    db = _store(tmp_path, fault_from_s=40, every_ms=250)
    with tracekit.open(db) as store:
        found = window_data.causes(store, None)
    fault_ns = T0 + 40 * 10**9
    assert abs(found.window[0] - fault_ns) <= 5 * 10**9, found.window
    assert found.baseline[1] == found.window[0]
    assert found.ranked and (found.ranked[0].service, found.ranked[0].operation) == ("payment", "POST /charge")
