"""The analyzer on the demo shop's run through every fault scenario (RabbitMQ), scored
against the ground truth the demo recorded."""

from __future__ import annotations

import pandas as pd
import pytest

import tracekit
from tracekit.analysis.causes import rank
from tracekit.analysis.run import analyze, critical_path, critical_paths
from tracekit.demo.faults import FAULT_SCENARIOS


def ns(value) -> int:
    return int(pd.Timestamp(value).value)


@pytest.fixture(scope="module")
def demo(rabbitmq_demo_run):
    with tracekit.open(rabbitmq_demo_run["db"]) as store:
        analysis = analyze(store)
    return {**rabbitmq_demo_run, "analysis": analysis, "paths": critical_paths(analysis)}


def windows(demo, name):
    return [(ns(s["started_at"]), ns(s["ended_at"])) for s in demo["truth"]["scenarios"]
            if s["scenario"] == name]


def test_every_consumer_joins_the_flow_of_its_producer(demo):
    spans = demo["analysis"].spans
    with_id = spans[spans["message_id"].notna()]
    producers = with_id[with_id["kind"] == "PRODUCER"][["message_id", "flow_id", "trace_id"]]
    consumers = with_id[with_id["kind"] == "CONSUMER"][["message_id", "flow_id", "trace_id"]]
    pairs = consumers.merge(producers, on="message_id", suffixes=("_c", "_p"))
    assert len(pairs) == len(consumers) > 0          # every consumer's producer is stored
    assert (pairs["trace_id_c"] != pairs["trace_id_p"]).any()   # across traces, too
    assert (pairs["flow_id_c"] == pairs["flow_id_p"]).all()
    # One flow per order: every span carrying an order id is in that order's flow.
    keyed = spans[spans["business_key"].notna()]
    assert keyed.groupby("business_key")["flow_id"].nunique().max() == 1


def test_workflows_are_classified_by_how_their_services_cooperate(demo):
    flows = demo["analysis"].flows
    truth = pd.DataFrame(demo["truth"]["flows"])[["order_id", "style"]]
    joined = flows.merge(truth, left_on="business_key", right_on="order_id")
    assert len(joined) == len(truth)                  # every generated flow was found
    healthy = joined[~joined["failed"]]
    agreement = (healthy["style_x"] == healthy["style_y"]).mean()
    assert agreement >= 0.98, healthy.groupby(["style_y", "style_x"]).size()
    orchestrated = joined[joined["style_x"] == "orchestrated"]
    assert (orchestrated["coordinator"] == "orders").mean() > 0.9   # the evidence: who calls


def test_root_cause_ranking_names_the_injected_operation(demo):
    baseline = windows(demo, "healthy")[0]
    hits, answers = 0, {}
    for name in FAULT_SCENARIOS:
        [scenario] = [s for s in demo["truth"]["scenarios"] if s["scenario"] == name]
        causes = rank(demo["analysis"], demo["paths"], windows(demo, name)[0], baseline)
        top = (causes[0].service, causes[0].operation) if causes else None
        answers[name] = top
        hits += top == (scenario["service"], scenario["operation"])
    assert hits / len(FAULT_SCENARIOS) >= 0.9, answers


def test_a_healthy_window_ranks_nothing(demo):
    start, end = windows(demo, "healthy")[0]
    middle = (start + end) // 2
    assert rank(demo["analysis"], demo["paths"], (middle, end), (start, middle)) == []


def test_flows_waiting_on_a_stopped_consumer_are_incomplete(demo):
    start, end = windows(demo, "consumer-down")[0]
    with tracekit.open(demo["db"]) as store:
        at_the_end_of_the_outage = analyze(store, as_of_ns=end)
    flows = at_the_end_of_the_outage.flows
    during = flows[(flows["start_ns"] >= start) & (flows["start_ns"] < end - 1_500_000_000)]
    stuck = during[during["status"] == "incomplete"]
    assert len(stuck) > 0
    assert all("shipping:process payment.captured" in m for m in stuck["missing_steps"])
    # Before the outage, nothing was stuck.
    before = flows[flows["start_ns"] < windows(demo, "healthy")[0][1]]
    assert (before["status"] != "incomplete").all()


def test_critical_path_crosses_the_broker_wait_into_the_late_consumer(demo):
    analysis = demo["analysis"]
    start, end = windows(demo, "consumer-down")[0]
    flows = analysis.flows
    candidates = flows[(flows["start_ns"] >= start) & (flows["start_ns"] < end)
                       & (flows["style"] == "choreographed") & ~flows["failed"]]
    flow = candidates.sort_values("duration_ns").iloc[-1]
    sections = critical_path(analysis, flow["flow_id"])
    waits = [s for s in sections if s.kind == "broker_wait"]
    services = analysis.spans.set_index("key")["service_name"]
    assert any(s.duration_ns > 1e9 and services[s.span] == "shipping" for s in waits)
    # Contiguous from the flow's start to its end: nothing counted twice, nothing missed.
    assert all(a.end_ns == b.start_ns for a, b in zip(sections, sections[1:]))
    assert sections[0].start_ns == flow["start_ns"] and sections[-1].end_ns == flow["end_ns"]


def test_analysis_tables_answer_sql_on_the_store(demo):
    from conftest import sql

    db = demo["db"]
    styles = {r["style"] for r in sql(db, "SELECT DISTINCT style FROM flows")}
    assert {"orchestrated", "choreographed", "hybrid"} <= styles
    [row] = sql(db, """SELECT count(*) AS n, count(DISTINCT f.flow_id) AS flows
                       FROM flow_spans s JOIN flows f USING (flow_id)""")
    assert row["n"] == len(demo["analysis"].spans) and row["flows"] == len(demo["analysis"].flows)
    waits = sql(db, """SELECT dst_service, max(wait_ms) AS worst FROM flow_edges
                       WHERE kind <> 'call' GROUP BY ALL ORDER BY worst DESC LIMIT 1""")
    assert waits[0]["dst_service"] == "shipping" and waits[0]["worst"] > 1000   # consumer-down
    broker = sql(db, """SELECT * FROM service_edges
                        WHERE src_service = 'broker:payment.captured' AND dst_service = 'shipping'""")
    assert broker and broker[0]["kind"] == "async" and broker[0]["calls"] > 0
    # Each critical path is one unbroken chain from the flow's start: no gap, no overlap.
    [check] = sql(db, """SELECT count(*) AS flows,
                                count(*) FILTER (abs(cp - span_ms) > 0.01 OR first <> f.start_time) AS off
                         FROM (SELECT flow_id, sum(duration_ms) AS cp, min(start_time) AS first,
                                      date_diff('microsecond', min(start_time), max(end_time)) / 1e3 AS span_ms
                               FROM critical_path GROUP BY ALL)
                         JOIN flows AS f USING (flow_id)""")
    assert check["flows"] == len(demo["analysis"].flows) and check["off"] == 0
    types = sql(db, "SELECT name, flows, style, critical_steps FROM flow_types ORDER BY flows DESC LIMIT 3")
    assert types[0]["flows"] > 10 and types[0]["name"].startswith("load-generator shopper")
    shares = [step["share"] for step in types[0]["critical_steps"]]
    assert shares == sorted(shares, reverse=True) and 0 < sum(shares) <= 1.0001


def test_flow_command_shows_steps_messages_path_and_origin(demo):
    import json

    from conftest import tracekit as cli

    [fault] = [f for f in demo["truth"]["faults"] if f["scenario"] == "payment-failure"][:1]
    detail = json.loads(cli("flow", "--db", str(demo["db"]), fault["order_id"], "--json").stdout)
    assert detail["business_key"] == fault["order_id"]
    assert detail["failure_origin"]["cause"] == {"service": "payment", "operation": "charge card"}
    assert detail["failure_origin"]["exception"].endswith("PaymentGatewayError")
    assert detail["critical_path"] and any(s["error"] for s in detail["steps"])
    text = cli("flow", "--db", str(demo["db"]), fault["order_id"]).stdout.decode()
    assert "critical path" in text and "failure origin: payment charge card" in text


def test_a_flow_read_from_the_tables_is_the_flow_the_analysis_found(demo):
    """`tracekit flow ID` reads the stored tables (no re-analysis): each flow's steps, hops
    through brokers and critical path are what the batch analysis of all spans gives."""
    from tracekit.analysis import stored_flow

    analysis, paths = demo["analysis"], demo["paths"]
    spans = analysis.spans.assign(ms=(analysis.spans["end_adj"] - analysis.spans["start_adj"]) / 1e6)
    hops = analysis.edges[analysis.edges["kind"] != "call"]
    flows = analysis.flows.set_index("flow_id")
    with tracekit.open(demo["db"]) as store:
        for flow_id in flows.index:
            detail = stored_flow.read(store, flow_id)
            start = int(flows.at[flow_id, "start_ns"])
            mine = spans[spans["flow_id"] == flow_id]
            assert sorted((s["trace_id"], s["span_id"], s["name"], s["at_ms"], s["duration_ms"],
                           s["error"]) for s in detail["steps"]) == sorted(
                (r.trace_id, r.span_id, r.name, (r.start_adj - start) / 1e6, r.ms, bool(r.error))
                for r in mine.itertuples())
            assert [s["at_ms"] for s in detail["steps"]] == sorted(s["at_ms"] for s in detail["steps"])
            assert sorted((h["kind"], h["via"], h["from"], h["to"]) for h in detail["async_edges"]) == sorted(
                (e.kind, e.via, f"{e.src_service} {e.src_name}", f"{e.dst_service} {e.dst_name}")
                for e in hops[hops["flow_id"] == flow_id].itertuples())
            path = paths[paths["flow_id"] == flow_id].sort_values("seq")
            assert [(p["name"], p["segment"], p["from_ms"]) for p in detail["critical_path"]] == [
                (r.name, r.segment, (r.start_ns - start) / 1e6) for r in path.itertuples()]
            assert detail["business_key"] == flows.at[flow_id, "business_key"] or (
                detail["business_key"] is None and pd.isna(flows.at[flow_id, "business_key"]))
            if mine["error"].any():     # its failure origin is then worked out from its spans
                assert stored_flow.failing(detail)


def test_causes_and_services_commands(demo):
    import json

    from conftest import tracekit as cli

    [s] = [s for s in demo["truth"]["scenarios"] if s["scenario"] == "poison-message"]
    [base] = [b for b in demo["truth"]["scenarios"] if b["scenario"] == "healthy"][:1]
    out = json.loads(cli("causes", "--db", str(demo["db"]), "--from", str(s["started_at"]),
                         "--to", str(s["ended_at"]), "--baseline-from", str(base["started_at"]),
                         "--baseline-to", str(base["ended_at"]), "--json").stdout)
    top = out["causes"][0]
    assert (top["service"], top["operation"]) == ("fraud-detection", "process order.placed")
    graph = json.loads(cli("services", "--db", str(demo["db"]), "--json").stdout)
    sync = {(e["src_service"], e["dst_service"]) for e in graph if e["kind"] == "sync"}
    assert {("frontend", "orders"), ("orders", "payment"), ("shipping", "carrier")} <= sync
    flows = json.loads(cli("flows", "--db", str(demo["db"]), "--failed", "--json", "--limit", "5").stdout)
    assert len(flows) == 5 and all(f["status"] == "failed" for f in flows)


def test_the_compiled_walk_gives_the_python_walks_answer(demo):
    from tracekit.analysis import _walk   # built by `pip install`; this fails if it was not
    from tracekit.analysis.run import _critical_paths_compiled, _critical_paths_python

    columns = ["flow_id", "seq", "span", "segment", "start_ns", "end_ns", "service_name", "name"]
    compiled = _critical_paths_compiled(demo["analysis"], _walk)[columns]
    python = _critical_paths_python(demo["analysis"])[columns]
    order = ["flow_id", "seq"]
    pd.testing.assert_frame_equal(compiled.sort_values(order).reset_index(drop=True),
                                  python.sort_values(order).reset_index(drop=True),
                                  check_dtype=False)
    assert demo["analysis"].flows["flow_id"].isin(set(compiled["flow_id"])).all()


def test_ids_that_are_not_otlp_hex_are_stitched_the_same(demo):
    """Span ids of 16 hex digits are read as numbers; other ids (an import from another
    system) are hashed as strings. Both give the same flows, edges and roots."""
    from tracekit.analysis.run import analyze_spans
    from tracekit.analysis.spans import load

    with tracekit.open(demo["db"]) as store:
        spans = load(store)
    tagged = spans.copy()
    for column in ("trace_id", "span_id", "parent_span_id"):
        tagged[column] = ("id-" + spans[column]).where(spans[column].notna(), None)
    tagged["links"] = [tuple("id-" + t.replace(":", ":id-") for t in links) + ("nowhere",)
                       for links in spans["links"]]
    hex_ids, other_ids = analyze_spans(spans), analyze_spans(tagged)

    def untag(values):
        return [v.replace("id-", "") if isinstance(v, str) else v for v in values]

    assert len(hex_ids.edges) > len(hex_ids.flows) > 100
    assert sorted(zip(hex_ids.edges["src"], hex_ids.edges["dst"], hex_ids.edges["kind"])) == \
        sorted(zip(untag(other_ids.edges["src"]), untag(other_ids.edges["dst"]),
                   other_ids.edges["kind"]))
    expected = hex_ids.flows.sort_values("flow_id").reset_index(drop=True)
    got = other_ids.flows.assign(flow_id=untag(other_ids.flows["flow_id"]),
                                 root_span=untag(other_ids.flows["root_span"]))
    got = got.sort_values("flow_id").reset_index(drop=True)
    columns = ["flow_id", "traces", "spans", "errors", "root_span", "style", "type_id", "status"]
    pd.testing.assert_frame_equal(got[columns], expected[columns], check_dtype=False)
