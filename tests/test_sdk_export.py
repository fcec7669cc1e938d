"""The real OpenTelemetry Python SDK exports to `tracekit collect`; `tracekit sql` reads it back
while the collector still runs, with values and types intact."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from tests.conftest import sql
from tests.otel_clients import pipeline

ATTRIBUTES = {
    "s": "text",
    "i": 42,
    "big": 2**62,
    "f": 1.5,
    "b": True,
    "strings": ["a", "b"],
    "ints": [1, 2, 3],
    "floats": [0.5, 2.5],
    "bools": [True, False],
    "http.route": "/orders/{id}",
    "http.response.status_code": 503,
}


def _export(transport: str, address: str, service: str) -> dict:
    """Send a parent, a child with a link and an event, an error span, and two logs."""
    p = pipeline(service, transport, address, **{"k8s.pod.name": "pod-1", "deployment.environment": "test"})
    tracer = p.tracer
    with tracer.start_as_current_span("checkout", kind=trace.SpanKind.SERVER, attributes=ATTRIBUTES) as parent:
        parent.add_event("cart.loaded", {"items": 3, "vip": False})
        p.logger.info("checkout started for %s", "o-1", extra={"order.id": "o-1", "attempt": 2})
        producer_ctx = parent.get_span_context()
        with tracer.start_as_current_span(
            "publish OrderPlaced", kind=trace.SpanKind.PRODUCER,
            links=[trace.Link(producer_ctx, {"link.reason": "fan-in", "n": 7})],
            attributes={"messaging.system": "rabbitmq", "messaging.destination.name": "orders"},
        ) as child:
            child_ctx = child.get_span_context()
        with tracer.start_as_current_span("charge", kind=trace.SpanKind.CLIENT) as failing:
            failing.record_exception(ValueError("card declined"))
            failing.set_status(Status(StatusCode.ERROR, "card declined"))
            p.logger.error("charge failed")
    p.flush()
    p.shutdown()
    return {"trace_id": format(producer_ctx.trace_id, "032x"),
            "parent_span_id": format(producer_ctx.span_id, "016x"),
            "child_span_id": format(child_ctx.span_id, "016x")}


@pytest.mark.parametrize("transport", ["grpc", "grpc-gzip", "http", "http-gzip"])
def test_sdk_spans_and_logs_are_queryable_while_collecting(collector, transport):
    address = collector.grpc if transport.startswith("grpc") else collector.http
    service = f"shop-{transport}"
    ids = _export(transport, address, service)
    assert collector.process.poll() is None, "collector must still be running"

    spans = {row["name"]: row for row in sql(collector.db, f"""
        SELECT name, kind, trace_id, span_id, parent_span_id, status_code, status_message,
               service_name, scope_name, scope_version, duration_ns,
               epoch_ns(end_time) - epoch_ns(start_time) AS computed_ns,
               resource_attributes['k8s.pod.name']::VARCHAR AS pod
        FROM spans WHERE service_name = '{service}'""")}
    assert set(spans) == {"checkout", "publish OrderPlaced", "charge"}
    root, child, failing = spans["checkout"], spans["publish OrderPlaced"], spans["charge"]
    assert root["trace_id"] == ids["trace_id"] and root["span_id"] == ids["parent_span_id"]
    assert root["parent_span_id"] is None and root["kind"] == "SERVER"
    assert child["parent_span_id"] == ids["parent_span_id"] and child["kind"] == "PRODUCER"
    assert failing["status_code"] == "ERROR" and failing["status_message"] == "card declined"
    assert root["scope_name"] == "tests.sdk" and root["scope_version"] == "1.2.3"
    assert root["duration_ns"] == root["computed_ns"] > 0
    assert root["pod"] == "pod-1"

    # Attribute values keep their types: ints compare as ints, arrays index, doubles stay doubles.
    [typed] = sql(collector.db, f"""
        SELECT attributes['i'] + 1 AS i_plus_one,
               attributes['big']::BIGINT = {2**62} AS big_exact,
               attributes['f']::DOUBLE * 2 AS f_doubled,
               attributes['b']::BOOLEAN AS b,
               attributes['strings'][2]::VARCHAR AS second_string,
               attributes['ints'][3] + 0 AS third_int,
               attributes['floats'][2]::DOUBLE AS second_float,
               attributes['bools'][2]::BOOLEAN AS second_bool,
               attributes['http.route']::VARCHAR AS route,
               attributes['http.response.status_code'] >= 500 AS is_5xx,
               variant_typeof(attributes['i']) AS i_type,
               variant_typeof(attributes['f']) AS f_type,
               variant_typeof(attributes['s']) AS s_type,
               events[1].name AS event_name,
               events[1].attributes['items'] + 0 AS event_items,
               events[1].attributes['vip']::BOOLEAN AS event_vip
        FROM spans WHERE service_name = '{service}' AND name = 'checkout'""")
    assert typed == {
        "i_plus_one": 43, "big_exact": True, "f_doubled": 3.0, "b": True,
        "second_string": "b", "third_int": 3, "second_float": 2.5, "second_bool": False,
        "route": "/orders/{id}", "is_5xx": True,
        "i_type": typed["i_type"], "f_type": "DOUBLE", "s_type": "VARCHAR",
        "event_name": "cart.loaded", "event_items": 3, "event_vip": False,
    }
    assert "INT" in typed["i_type"]

    [link] = sql(collector.db, f"""
        SELECT links[1].trace_id AS trace_id, links[1].span_id AS span_id,
               links[1].attributes['link.reason']::VARCHAR AS reason,
               links[1].attributes['n'] + 0 AS n
        FROM spans WHERE service_name = '{service}' AND name = 'publish OrderPlaced'""")
    assert link == {"trace_id": ids["trace_id"], "span_id": ids["parent_span_id"],
                    "reason": "fan-in", "n": 7}

    [exception] = sql(collector.db, f"""
        SELECT e.name, e.attributes['exception.type']::VARCHAR AS type,
               e.attributes['exception.message']::VARCHAR AS message
        FROM (SELECT unnest(events) AS e FROM spans
              WHERE service_name = '{service}' AND name = 'charge')""")
    assert exception == {"name": "exception", "type": "ValueError", "message": "card declined"}

    logs = sql(collector.db, f"""
        SELECT body::VARCHAR AS body, severity_text, severity_number, trace_id, span_id,
               attributes['order.id']::VARCHAR AS order_id, attributes['attempt'] + 0 AS attempt
        FROM logs WHERE service_name = '{service}' ORDER BY "timestamp" """)
    assert [log["body"] for log in logs] == ["checkout started for o-1", "charge failed"]
    assert logs[0]["severity_text"] == "INFO" and logs[1]["severity_text"] == "ERROR"
    assert logs[0]["severity_number"] == 9 and logs[1]["severity_number"] == 17
    assert all(log["trace_id"] == ids["trace_id"] for log in logs)
    assert logs[0]["span_id"] == ids["parent_span_id"]
    assert logs[0]["order_id"] == "o-1" and logs[0]["attempt"] == 2
    assert spans["charge"]["span_id"] == logs[1]["span_id"]
