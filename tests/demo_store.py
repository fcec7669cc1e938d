"""Reading a demo run's store in the tests."""

from __future__ import annotations

from pathlib import Path

import tracekit

# Which queues each event reaches in the shop (the test's own map of the topology): every
# published message must have been consumed this many times by the end of a run.
FAN_OUT = {"order.placed": 2, "inventory.reserved": 1, "payment.captured": 2, "fraud.checked": 1,
           "order.shipped": 1, "payment.failed": 2, "return.completed": 2, "shipment.failed": 1,
           "payment.refunded": 1, "inventory.released": 0}


def rows(db: Path, query: str, params: list | None = None) -> list[dict]:
    with tracekit.open(db) as store:
        return store.arrow(query, params or []).to_pylist()


UNCONSUMED = """
WITH sent AS (
    SELECT attributes['messaging.message.id']::VARCHAR AS message_id,
           attributes['messaging.rabbitmq.destination.routing_key']::VARCHAR AS event
    FROM spans WHERE kind = 'PRODUCER'),
received AS (
    SELECT attributes['messaging.message.id']::VARCHAR AS message_id, count(*) AS consumers
    FROM spans WHERE kind = 'CONSUMER'
      AND attributes['messaging.rabbitmq.dead_letter.queue'] IS NULL
    GROUP BY ALL)
SELECT sent.event, sent.message_id, coalesce(received.consumers, 0) AS consumers
FROM sent LEFT JOIN received USING (message_id)
"""


def unconsumed(db: Path) -> list[dict]:
    """Published messages that have not reached every queue bound to their event yet.

    A poison message counts as consumed once its failed consumer span is stored."""
    return [r for r in rows(db, UNCONSUMED) if r["consumers"] < FAN_OUT[r["event"]]]
