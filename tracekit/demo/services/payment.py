"""Payment: charges and refunds cards, for the saga (HTTP) and the choreography (events)."""

from __future__ import annotations

import asyncio
import random
import uuid

from aiohttp import web

from tracekit.demo.messaging import Propagation
from tracekit.demo.services.base import Service, error_response


class PaymentGatewayError(Exception):
    """The card processor rejected the charge."""


class Payment(Service):
    name = "payment"

    def schema(self) -> str:
        return """CREATE TABLE IF NOT EXISTS payments (
                      payment_id TEXT PRIMARY KEY, order_id TEXT NOT NULL, amount, state TEXT)"""

    def routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/charge", self.charge_http)
        router.add_post("/refund", self.refund_http)

    async def start_consumers(self) -> None:
        await self.consume(["inventory.reserved"], Propagation.LINK, self.on_inventory_reserved)
        await self.consume(["shipment.failed"], Propagation.LINK, self.on_shipment_failed,
                           queue="payment-refunds")

    async def charge(self, order: dict) -> str:
        """The call to the card processor, in a span of its own."""
        with self.tracer.start_as_current_span(
                "charge card", attributes={"order.id": order["order_id"],
                                           "payment.amount": str(order["total"]),
                                           "payment.processor": "acme-pay"}):
            await asyncio.sleep(random.uniform(0.01, 0.04))
            if self.inject("payment-failure", order["order_id"], chance=0.4):
                raise PaymentGatewayError(
                    f"card processor declined charge for order {order['order_id']}: "
                    "gateway error 5002")
            payment_id = uuid.uuid4().hex[:16]
            await self.db("INSERT INTO payments VALUES (?, ?, ?, 'captured')",
                          (payment_id, order["order_id"], order["total"]))
            return payment_id

    async def refund(self, order: dict) -> None:
        with self.tracer.start_as_current_span("refund card",
                                               attributes={"order.id": order["order_id"]}):
            await self.db("UPDATE payments SET state = 'refunded' WHERE order_id = ?",
                          (order["order_id"],))

    async def charge_http(self, request: web.Request) -> web.Response:
        order = await request.json()
        if self.inject("circuit-breaker", order["order_id"]):
            self.log.error("charge for %s refused: card processor connection pool exhausted",
                           order["order_id"])
            return error_response(503, "payment processor unavailable")
        try:
            payment_id = await self.charge(order)
        except PaymentGatewayError as exc:
            self.log.error("charge for order %s failed: %s", order["order_id"], exc)
            return error_response(500, str(exc), exc)
        self.log.info("charged order %s", order["order_id"])
        return web.json_response({"order_id": order["order_id"], "payment_id": payment_id})

    async def refund_http(self, request: web.Request) -> web.Response:
        order = await request.json()
        await self.refund(order)
        self.log.info("refunded order %s", order["order_id"])
        return web.json_response({"order_id": order["order_id"], "status": "refunded"})

    async def on_inventory_reserved(self, event: dict, delivery) -> None:
        try:
            payment_id = await self.charge(event)
        except PaymentGatewayError as exc:
            self.log.error("charge for order %s failed: %s", event["order_id"], exc)
            await self.publish("payment.failed", {"order_id": event["order_id"],
                                                  "items": event["items"], "reason": str(exc)})
            return
        self.log.info("charged order %s", event["order_id"])
        await self.publish("payment.captured", {**event, "payment_id": payment_id})

    async def on_shipment_failed(self, event: dict, delivery) -> None:
        await self.refund(event)
        self.log.info("refunded order %s: shipment failed", event["order_id"])
        await self.publish("payment.refunded", {"order_id": event["order_id"],
                                                "items": event["items"]})
