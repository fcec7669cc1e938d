"""Shipping: books a carrier for an order, over HTTP (saga) or on PaymentCaptured."""

from __future__ import annotations

import asyncio
import time
import uuid

from aiohttp import web

from tracekit.demo.messaging import Propagation
from tracekit.demo.services.base import Service, UpstreamError, error_response, fail_span


class AddressNotServiceable(Exception):
    pass


class Shipping(Service):
    name = "shipping"

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self.down_since_ns: int | None = None
        self.last_outage: tuple[int, int] | None = None   # (stopped, resumed), in ns

    def schema(self) -> str:
        return """CREATE TABLE IF NOT EXISTS shipments (
                      shipment_id TEXT PRIMARY KEY, order_id TEXT NOT NULL, carrier_price REAL)"""

    def routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/shipments", self.ship_http)

    async def start_consumers(self) -> None:
        self.captured = await self.consume(["payment.captured"], Propagation.LINK,
                                           self.on_payment_captured)
        loop = asyncio.get_running_loop()
        self.flags.on_change(lambda name: loop.call_soon_threadsafe(
            lambda: asyncio.ensure_future(self._follow_flags(name))))

    async def _follow_flags(self, name: str) -> None:
        """consumer-down: stop taking messages (they wait in the queue) until it is over."""
        if name == "consumer-down" and self.down_since_ns is None:
            self.down_since_ns = time.time_ns()
            await self.captured.pause()
            self.log.warning("shipping consumer stopped: payment.captured messages will wait")
        elif name != "consumer-down" and self.down_since_ns is not None:
            self.last_outage = (self.down_since_ns, time.time_ns())
            self.down_since_ns = None
            await self.captured.resume()
            self.log.info("shipping consumer resumed")

    async def ship(self, order: dict) -> str:
        quote = await self.call("carrier", "/quote", {"order_id": order["order_id"],
                                                      "address": order["address"]},
                                timeout_s=2.5)
        shipment_id = uuid.uuid4().hex[:16]
        await self.db("INSERT INTO shipments VALUES (?, ?, ?)",
                      (shipment_id, order["order_id"], quote["price"]))
        return shipment_id

    async def ship_http(self, request: web.Request) -> web.Response:
        order = await request.json()
        if self.inject("saga-compensation", order["order_id"], chance=0.5):
            exc = AddressNotServiceable(f"no carrier serves {order['address']['zip']}")
            self.log.warning("order %s: %s", order["order_id"], exc)
            return error_response(422, str(exc))
        try:
            shipment_id = await self.ship(order)
        except UpstreamError as exc:
            self.log.error("order %s: carrier failed: %s", order["order_id"], exc)
            return error_response(exc.status if exc.status >= 500 else 502, str(exc), exc)
        self.log.info("order %s shipped as %s", order["order_id"], shipment_id)
        return web.json_response({"order_id": order["order_id"], "shipment_id": shipment_id})

    async def on_payment_captured(self, event: dict, delivery) -> None:
        if self.last_outage and self.last_outage[0] <= event.get("sent_at_ns", 0) < self.last_outage[1]:
            self.record_fault("consumer-down", event["order_id"])   # it waited in the queue
        try:
            shipment_id = await self.ship(event)
        except UpstreamError as exc:
            fail_span(exc)
            self.log.error("order %s: shipment failed: %s", event["order_id"], exc)
            await self.publish("shipment.failed", {"order_id": event["order_id"],
                                                   "items": event["items"], "reason": str(exc)})
            return
        self.log.info("order %s shipped as %s", event["order_id"], shipment_id)
        await self.publish("order.shipped", {"order_id": event["order_id"],
                                             "shipment_id": shipment_id})
