"""The analyzer's tables while a collector holds the store: spans sent by the real SDK are
stitched into one flow across traces, and the collector computes them in a worker process."""

from __future__ import annotations

from pathlib import Path

from opentelemetry.trace import Link, SpanKind

from conftest import sql
from otel_clients import pipeline


def children(pid: int) -> set[int]:
    """Child processes, whichever of its threads started them."""
    found = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found |= {int(p) for p in (task / "children").read_text().split()}
        except FileNotFoundError:    # the thread ended meanwhile
            pass
    return found


def test_flows_are_queryable_while_collecting_and_computed_off_the_collector(collector):
    producer = pipeline("checkout", "grpc", collector.grpc)
    consumer = pipeline("inventory", "grpc", collector.grpc)
    with producer.tracer.start_as_current_span("POST /checkout", kind=SpanKind.SERVER):
        with producer.tracer.start_as_current_span(
                "publish order.placed", kind=SpanKind.PRODUCER,
                attributes={"messaging.system": "rabbitmq", "messaging.message.id": "m-1",
                            "order.id": "o-1"}) as sent:
            context = sent.get_span_context()
    with consumer.tracer.start_as_current_span(
            "process order.placed", kind=SpanKind.CONSUMER, links=[Link(context)],
            attributes={"messaging.system": "rabbitmq", "messaging.message.id": "m-1"}):
        pass
    producer.flush()
    consumer.flush()

    [flow] = sql(collector.db, "SELECT traces, spans, style, async_hops FROM flows")
    assert flow == {"traces": 2, "spans": 3, "style": "choreographed", "async_hops": 1}
    [edge] = sql(collector.db, "SELECT kind, via, src_service, dst_service FROM flow_edges "
                               "WHERE kind <> 'call'")
    assert edge == {"kind": "message", "via": "link", "src_service": "checkout",
                    "dst_service": "inventory"}
    # The analysis runs in a worker process of the collector's (named for ps), not in it.
    names = {Path(f"/proc/{pid}/comm").read_text().strip() for pid in children(collector.process.pid)}
    assert "tracekit-flows" in names

    # A late consumer of the same message (another trace, linked to the old producer) joins
    # the existing flow when it arrives; the analysis is brought up to date, not redone.
    late = pipeline("notification", "grpc", collector.grpc)
    with late.tracer.start_as_current_span(
            "process order.placed", kind=SpanKind.CONSUMER, links=[Link(context)],
            attributes={"messaging.system": "rabbitmq", "messaging.message.id": "m-1"}):
        pass
    late.flush()
    [flow] = sql(collector.db, "SELECT traces, spans, services FROM flows")
    assert flow == {"traces": 3, "spans": 4,
                    "services": ["checkout", "inventory", "notification"]}
    for client in (producer, consumer, late):
        client.shutdown()
