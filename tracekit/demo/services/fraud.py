"""Fraud detection: scores every placed order and publishes the verdict."""

from __future__ import annotations

import asyncio
import random

from tracekit.demo.messaging import Propagation
from tracekit.demo.services.base import Service


class FraudDetection(Service):
    name = "fraud-detection"

    async def start_consumers(self) -> None:
        await self.consume(["order.placed"], Propagation.LINK, self.on_order_placed)

    async def on_order_placed(self, event: dict, delivery) -> None:
        try:
            total = float(event["total"])
        except (TypeError, ValueError):
            self.inject("poison-message", event.get("order_id"))
            self.log.error("cannot score order %s: total %r is not a number",
                           event.get("order_id"), event.get("total"))
            raise
        with self.tracer.start_as_current_span("score order",
                                               attributes={"order.id": event["order_id"]}):
            await asyncio.sleep(random.uniform(0.005, 0.02))
            score = min(1.0, total / 2000 + random.random() * 0.1)
        self.log.info("order %s scored %.2f", event["order_id"], score)
        await self.publish("fraud.checked", {"order_id": event["order_id"], "score": score})
