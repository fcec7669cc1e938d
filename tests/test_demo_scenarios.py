"""The demo shop against the machine's RabbitMQ, through every fault scenario: what the store
holds afterwards is what the analyzer and the reports will be built and scored on."""

from __future__ import annotations

import pytest

from demo_store import rows, unconsumed
from tracekit.demo.faults import FAULT_SCENARIOS, SCENARIOS


@pytest.fixture(scope="module")
def run(rabbitmq_demo_run):
    return rabbitmq_demo_run


def q(run, query, *params):
    return rows(run["db"], query, list(params))


def window(run, scenario_name):
    """[start, end] of the scenario's run, from the ground truth."""
    [scenario] = [s for s in run["truth"]["scenarios"] if s["scenario"] == scenario_name]
    return scenario["started_at"], scenario["ended_at"]


def test_producers_and_consumers_carry_the_messaging_conventions(run):
    spans = q(run, """
        SELECT kind, attributes['messaging.system']::VARCHAR AS system,
               attributes['messaging.operation.type']::VARCHAR AS operation,
               attributes['messaging.destination.name']::VARCHAR AS destination,
               attributes['messaging.message.id']::VARCHAR AS message_id,
               attributes['messaging.rabbitmq.destination.routing_key']::VARCHAR AS routing_key
        FROM spans WHERE kind IN ('PRODUCER', 'CONSUMER')""")
    assert {s["kind"] for s in spans} == {"PRODUCER", "CONSUMER"}
    for span in spans:
        assert span["system"] == "rabbitmq"
        assert span["operation"] == ("send" if span["kind"] == "PRODUCER" else "process")
        assert span["destination"].endswith(".events") and span["message_id"] and span["routing_key"]
    assert unconsumed(run["db"]) == []   # every message reached every queue bound to it


def test_link_consumers_start_a_trace_linked_to_the_producer(run):
    linked = q(run, """
        SELECT c.service_name, c.trace_id AS consumer_trace, p.trace_id AS producer_trace,
               p.kind AS producer_kind, c.parent_span_id
        FROM spans c, unnest(c.links) AS l(link)
        JOIN spans p ON p.trace_id = link.trace_id AND p.span_id = link.span_id
        WHERE c.kind = 'CONSUMER'""")
    assert {r["service_name"] for r in linked} >= {"inventory", "payment", "shipping",
                                                   "fraud-detection"}
    assert all(r["producer_kind"] == "PRODUCER" for r in linked)
    assert all(r["consumer_trace"] != r["producer_trace"] and r["parent_span_id"] is None
               for r in linked)


def test_parent_consumer_continues_the_producer_trace(run):
    pairs = q(run, """
        SELECT p.kind AS producer_kind, len(c.links) AS links
        FROM spans c JOIN spans p ON p.trace_id = c.trace_id AND p.span_id = c.parent_span_id
        WHERE c.kind = 'CONSUMER' AND c.service_name = 'notification'""")
    assert pairs and all(p["producer_kind"] == "PRODUCER" and p["links"] == 0 for p in pairs)


def test_no_context_consumer_shares_only_the_message_id_and_order_id(run):
    consumers = q(run, """
        SELECT c.trace_id, c.parent_span_id, len(c.links) AS links,
               c.attributes['order.id']::VARCHAR AS order_id,
               p.trace_id AS producer_trace, p.attributes['order.id']::VARCHAR AS producer_order
        FROM spans c JOIN spans p
          ON p.kind = 'PRODUCER'
         AND p.attributes['messaging.message.id']::VARCHAR = c.attributes['messaging.message.id']::VARCHAR
        WHERE c.kind = 'CONSUMER' AND c.service_name = 'accounting'""")
    assert consumers
    for c in consumers:
        assert c["parent_span_id"] is None and c["links"] == 0
        assert c["trace_id"] != c["producer_trace"] and c["order_id"] == c["producer_order"]


def test_logs_carry_the_trace_and_span_of_their_work(run):
    [counts] = q(run, """
        SELECT count(*) AS logs, count(l.trace_id) AS in_context, count(s.span_id) AS joined
        FROM logs l LEFT JOIN spans s USING (trace_id, span_id)
        WHERE l.service_name <> 'tracekit-demo'""")
    # Only lifecycle messages (a consumer stopped, resumed) are logged outside a span.
    assert counts["logs"] > 100 and counts["in_context"] >= 0.99 * counts["logs"]
    assert counts["joined"] == counts["in_context"]
    services = {r["service_name"] for r in q(run, "SELECT DISTINCT service_name FROM logs")}
    assert {"orders", "payment", "inventory", "shipping", "accounting", "notification"} <= services


CHECKS = {
    # The injected exception, as an error span with an exception event of that type.
    "payment-failure": """
        SELECT count(*) FROM spans, unnest(events) AS e(event)
        WHERE name = 'charge card' AND status_code = 'ERROR' AND event.name = 'exception'
          AND event.attributes['exception.type']::VARCHAR LIKE '%PaymentGatewayError'
          AND start_time BETWEEN $1 AND $2""",
    # A client span that failed to connect: no server span under it.
    "payment-unreachable": """
        SELECT count(*) FROM spans c
        WHERE c.service_name = 'orders' AND c.kind = 'CLIENT' AND c.status_code = 'ERROR'
          AND coalesce(c.attributes['url.full'], c.attributes['http.url'])::VARCHAR LIKE '%/charge'
          AND NOT EXISTS (SELECT 1 FROM spans s WHERE s.parent_span_id = c.span_id
                          AND s.trace_id = c.trace_id)
          AND c.start_time BETWEEN $1 AND $2""",
    "slow-inventory-db": """
        SELECT count(*) FROM spans WHERE service_name = 'inventory' AND name = 'SELECT'
          AND duration_ns >= 300e6 AND start_time BETWEEN $1 AND $2""",
    # Messages that waited in shipping's queue: the consumer ran long after the producer.
    "consumer-down": """
        SELECT count(*) FROM spans c JOIN spans p ON p.kind = 'PRODUCER'
          AND p.attributes['messaging.message.id']::VARCHAR = c.attributes['messaging.message.id']::VARCHAR
        WHERE c.service_name = 'shipping' AND c.kind = 'CONSUMER'
          AND c.start_time - p.end_time > INTERVAL 1 SECOND AND p.start_time BETWEEN $1 AND $2""",
    # Retried requests: resend_count on the client spans, 503 on the server spans.
    "retry-storm": """
        SELECT count(*) FROM spans c JOIN spans s ON s.trace_id = c.trace_id
          AND s.parent_span_id = c.span_id
        WHERE c.attributes['http.request.resend_count']::INT >= 1 AND s.name = 'POST /reserve'
          AND c.start_time BETWEEN $1 AND $2""",
    # Fast failures that made no downstream call.
    "circuit-breaker": """
        SELECT count(*) FROM spans b
        WHERE b.name = 'circuit-breaker payment' AND b.status_code = 'ERROR'
          AND NOT EXISTS (SELECT 1 FROM spans s WHERE s.parent_span_id = b.span_id
                          AND s.trace_id = b.trace_id)
          AND b.start_time BETWEEN $1 AND $2""",
    # Deadlines up the chain: orders gave up on shipping, shipping on the carrier.
    "timeout-cascade": """
        SELECT least(count(*) FILTER (service_name = 'orders'),
                     count(*) FILTER (service_name = 'shipping'))
        FROM spans
        WHERE kind = 'CLIENT' AND status_code = 'ERROR' AND service_name IN ('orders', 'shipping')
          AND duration_ns BETWEEN 1.4e9 AND 3e9 AND start_time BETWEEN $1 AND $2""",
    # The poison message failed its consumer and reached the dead-letter queue's consumer.
    "poison-message": """
        SELECT count(*) FROM spans f JOIN spans d
          ON d.attributes['messaging.message.id']::VARCHAR = f.attributes['messaging.message.id']::VARCHAR
         AND d.attributes['messaging.rabbitmq.dead_letter.queue'] IS NOT NULL
        WHERE f.service_name = 'fraud-detection' AND f.kind = 'CONSUMER' AND f.status_code = 'ERROR'
          AND len(f.events) > 0 AND f.start_time BETWEEN $1 AND $2""",
    # Sagas compensated: a refund and a release under `saga compensate`.
    "saga-compensation": """
        SELECT count(*) FROM spans c
        WHERE c.name = 'saga compensate' AND c.start_time BETWEEN $1 AND $2
          AND list_contains(c.attributes['saga.compensated_steps']::VARCHAR[], 'payment')
          AND (SELECT count(*) FROM spans k WHERE k.trace_id = c.trace_id
               AND k.parent_span_id = c.span_id AND k.kind = 'CLIENT') = 2""",
}


@pytest.mark.parametrize("scenario_name", FAULT_SCENARIOS)
def test_each_scenario_leaves_its_fault_in_the_store(run, scenario_name):
    start, end = window(run, scenario_name)
    # Work started in the window may finish after it (a queue drains, a deadline expires).
    [[found]] = [list(r.values()) for r in q(run, CHECKS[scenario_name], start, end)]
    assert found > 0, f"{scenario_name} left no trace of its fault"
    outside = q(run, "SELECT count(*) AS n FROM demo_faults WHERE scenario = $1", scenario_name)
    assert outside[0]["n"] > 0


def test_ground_truth_names_each_run_and_each_injected_span(run):
    scenarios = {s["scenario"]: s for s in run["truth"]["scenarios"]}
    assert set(scenarios) == set(SCENARIOS)
    for name, s in scenarios.items():
        assert s["started_at"] < s["ended_at"]
        assert (s["service"], s["operation"]) == (SCENARIOS[name].service, SCENARIOS[name].operation)
    faults = run["truth"]["faults"]
    assert {f["scenario"] for f in faults} == set(FAULT_SCENARIOS)
    for f in faults:   # inside its scenario's window, in a span the store holds
        s = scenarios[f["scenario"]]
        assert f["order_id"].startswith("o-")
        assert s["started_at"] <= f["timestamp"]
    missing = q(run, """SELECT count(*) AS n FROM demo_faults f
                        ANTI JOIN spans s USING (trace_id, span_id)""")
    assert missing[0]["n"] == 0
    flows = run["truth"]["flows"]
    assert {f["style"] for f in flows} == {"orchestrated", "choreographed", "hybrid"}
    roots = q(run, """SELECT count(*) AS n FROM demo_flows f
                      ANTI JOIN spans s ON s.trace_id = f.root_trace_id AND s.parent_span_id IS NULL""")
    assert roots[0]["n"] == 0
    assert sum(run["summary"]["stats"]["started"].values()) == len(flows)
