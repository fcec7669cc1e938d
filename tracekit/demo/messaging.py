"""Producer and consumer spans around the broker, per the messaging semantic conventions.

Consumers take the producer's context one of the three ways real systems do:

- `PARENT`: the consumer span continues the producer's trace (a child of the send span);
- `LINK`: the consumer starts a new trace with a span link to the producer (the
  conventions' recommendation for asynchronous processing);
- `NONE`: no context at all: only `messaging.message.id` and the business key (`order.id`)
  are shared, as with a legacy consumer that ignores headers.

opentelemetry-instrumentation-aio-pika only does the first and knows nothing of the in-process
broker, so the demo has this small layer instead.
"""

from __future__ import annotations

import enum
import json
import uuid
from typing import Awaitable, Callable

from opentelemetry import context, propagate, trace
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from tracekit.demo.broker import Delivery


class Propagation(enum.Enum):
    PARENT = "parent"
    LINK = "link"
    NONE = "none"


def _common(broker, routing_key: str, message_id: str, order_id: str | None) -> dict:
    attributes = {
        "messaging.system": broker.system,
        "messaging.destination.name": broker.exchange,
        "messaging.rabbitmq.destination.routing_key": routing_key,
        "messaging.message.id": message_id,
        "server.address": broker.address,
    }
    if order_id:
        attributes["messaging.message.conversation_id"] = order_id
        attributes["order.id"] = order_id
    return attributes


async def publish(tracer: trace.Tracer, broker, event: str, payload: dict) -> str:
    """Send `payload` as event `event` (the routing key) inside a PRODUCER span; the message
    id is returned. The W3C trace context goes in the message headers."""
    message_id = uuid.uuid4().hex
    body = json.dumps(payload).encode()
    attributes = _common(broker, event, message_id, payload.get("order_id"))
    attributes.update({"messaging.operation.type": "send", "messaging.operation.name": "publish",
                       "messaging.message.body.size": len(body)})
    with tracer.start_as_current_span(f"publish {event}", kind=SpanKind.PRODUCER,
                                      attributes=attributes):
        headers: dict[str, str] = {}
        propagate.inject(headers)
        await broker.publish(event, body, headers, message_id)
    return message_id


def consumer(tracer: trace.Tracer, broker, service: str, mode: Propagation,
             handler: Callable[[dict, Delivery], Awaitable[None]]):
    """Wrap `handler(payload, delivery)` in a CONSUMER span `process <event>`.

    A handler that raises marks the span ERROR with an exception event; the broker then
    dead-letters the message. A body that is not JSON raises ValueError the same way.
    """

    async def on_delivery(delivery: Delivery) -> None:
        producer = propagate.extract(delivery.headers)
        producer_span = trace.get_current_span(producer).get_span_context()
        parent = links = None
        if mode is Propagation.PARENT:
            parent = producer
        elif mode is Propagation.LINK and producer_span.is_valid:
            links = [Link(producer_span, {"messaging.operation.type": "send"})]
        try:
            payload = json.loads(delivery.body)
            order_id = payload.get("order_id") if isinstance(payload, dict) else None
        except ValueError:
            payload, order_id = None, None
        attributes = _common(broker, delivery.routing_key, delivery.message_id, order_id)
        attributes.update({
            "messaging.operation.type": "process",
            "messaging.operation.name": "process",
            "messaging.destination.subscription.name": delivery.queue,
            "messaging.consumer.group.name": service,
            "messaging.message.body.size": len(delivery.body),
        })
        if delivery.delivery_tag is not None:
            attributes["messaging.rabbitmq.message.delivery_tag"] = delivery.delivery_tag
        name = f"process {delivery.routing_key}"
        if "x-first-death-queue" in delivery.headers:   # a dead letter: named for its queue
            attributes["messaging.rabbitmq.dead_letter.queue"] = delivery.headers["x-first-death-queue"]
            name = f"process {delivery.queue}"
        # A NONE consumer starts from an empty context, whatever the caller's context holds.
        ctx = parent if parent is not None else context.Context()
        with tracer.start_as_current_span(name, context=ctx,
                                          kind=SpanKind.CONSUMER, links=links,
                                          attributes=attributes) as span:
            if payload is None or not isinstance(payload, dict):
                error = ValueError(f"message {delivery.message_id} is not a JSON object")
                span.set_attribute("error.type", "ValueError")
                raise error
            try:
                await handler(payload, delivery)
            except Exception as exc:
                span.set_attribute("error.type", type(exc).__qualname__)
                span.set_status(Status(StatusCode.ERROR, str(exc)))
                raise

    return on_delivery
