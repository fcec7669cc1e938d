"""Fraud detection: scores every placed order and publishes the verdict."""

from __future__ import annotations

import asyncio
import random
import time

from tracekit.demo.messaging import Propagation
from tracekit.demo.services.base import Service


class FraudDetection(Service):
    name = "fraud-detection"
    uses_redis = True
    WINDOW_S = 60

    def schema(self) -> str:
        return """CREATE TABLE IF NOT EXISTS velocity (
                      customer TEXT NOT NULL, at REAL NOT NULL);
                  CREATE INDEX IF NOT EXISTS velocity_customer ON velocity (customer, at)"""

    async def orders_last_minute(self, customer: str) -> int:
        """How many orders this customer placed in the last minute (this one included):
        a Redis counter with an expiry when Redis is configured, a SQLite table otherwise."""
        if self.redis is not None:
            key = f"fraud:velocity:{customer}"
            count = await self.redis.incr(key)
            if count == 1:
                await self.redis.expire(key, self.WINDOW_S)
            return int(count)
        now = time.time()
        await self.db("INSERT INTO velocity VALUES (?, ?)", (customer, now))
        [(count,)] = await self.db("SELECT count(*) FROM velocity WHERE customer = ? AND at > ?",
                                   (customer, now - self.WINDOW_S))
        return count

    async def start_consumers(self) -> None:
        await self.consume(["order.placed"], Propagation.LINK, self.on_order_placed)

    async def on_order_placed(self, event: dict, delivery) -> None:
        try:
            total = float(event["total"])
        except (TypeError, ValueError):
            # Only the poison-message scenario sends such totals; the message may be consumed
            # after the scenario has ended, so the fault is recorded whatever the flag says now.
            self.record_fault("poison-message", event.get("order_id"))
            self.log.error("cannot score order %s: total %r is not a number",
                           event.get("order_id"), event.get("total"))
            raise
        with self.tracer.start_as_current_span("score order",
                                               attributes={"order.id": event["order_id"]}):
            recent = await self.orders_last_minute(event.get("customer", "anonymous"))
            await asyncio.sleep(random.uniform(0.005, 0.02))
            score = min(1.0, total / 2000 + 0.1 * (recent - 1) + random.random() * 0.1)
        self.log.info("order %s scored %.2f", event["order_id"], score)
        await self.publish("fraud.checked", {"order_id": event["order_id"], "score": score})
