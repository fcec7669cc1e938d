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
