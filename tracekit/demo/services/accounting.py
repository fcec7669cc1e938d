"""Accounting: a legacy consumer that ignores trace headers; only the order id and the message
id tie its work to the flow (a correlation edge, not a propagated context)."""

from __future__ import annotations

from tracekit.demo.messaging import Propagation
from tracekit.demo.services.base import Service


class Accounting(Service):
    name = "accounting"

    def schema(self) -> str:
        return """CREATE TABLE IF NOT EXISTS ledger (
                      message_id TEXT PRIMARY KEY, order_id TEXT, entry TEXT NOT NULL)"""

    async def start_consumers(self) -> None:
        await self.consume(["payment.captured", "fraud.checked", "return.completed"],
                           Propagation.NONE, self.on_event)

    async def on_event(self, event: dict, delivery) -> None:
        await self.db("INSERT OR IGNORE INTO ledger VALUES (?, ?, ?)",
                      (delivery.message_id, event.get("order_id"), delivery.routing_key))
        self.log.info("ledger entry %s for order %s", delivery.routing_key, event.get("order_id"))
