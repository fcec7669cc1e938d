"""Notification: e-mails customers (continuing the producer's trace) and alerts operators
about dead-lettered messages."""

from __future__ import annotations

import asyncio
import random

from tracekit.demo import messaging
from tracekit.demo.messaging import Propagation
from tracekit.demo.services.base import Service

TEMPLATES = {"order.shipped": "your order is on its way",
             "payment.failed": "we could not charge your card",
             "return.completed": "your refund is on its way"}


class Notification(Service):
    name = "notification"

    async def start_consumers(self) -> None:
        await self.consume(list(TEMPLATES), Propagation.PARENT, self.on_event)
        handler = messaging.consumer(self.tracer, self.broker, self.name, Propagation.LINK,
                                     self.on_dead_letter)
        self.subscriptions.append(await self.broker.subscribe_dead_letters(handler))

    async def on_event(self, event: dict, delivery) -> None:
        with self.tracer.start_as_current_span("send email",
                                               attributes={"order.id": event["order_id"],
                                                           "email.template": delivery.routing_key}):
            await asyncio.sleep(random.uniform(0.005, 0.015))
        self.log.info("e-mailed customer of order %s: %s", event["order_id"],
                      TEMPLATES[delivery.routing_key])

    async def on_dead_letter(self, event: dict, delivery) -> None:
        self.log.error("message %s (%s) was dead-lettered from %s: %s; order %s needs a person",
                       delivery.message_id, delivery.routing_key,
                       delivery.headers.get("x-first-death-queue", "?"),
                       delivery.headers.get("x-first-death-reason", "rejected"),
                       event.get("order_id"))
