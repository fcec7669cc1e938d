"""Inventory: reserves and releases stock, over HTTP for the saga and by reacting to events."""

from __future__ import annotations

import random

from aiohttp import web

from tracekit.demo.messaging import Propagation
from tracekit.demo.services.base import Service, error_response


class Inventory(Service):
    name = "inventory"

    def schema(self) -> str:
        skus = ", ".join(f"('sku-{n}', 1000000, 0)" for n in range(20))
        return f"""CREATE TABLE IF NOT EXISTS stock (
                       sku TEXT PRIMARY KEY, quantity INTEGER NOT NULL, reserved INTEGER NOT NULL);
                   INSERT OR IGNORE INTO stock VALUES {skus};"""

    def routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/reserve", self.reserve_http)
        router.add_post("/release", self.release_http)
        router.add_post("/restock", self.release_http)

    async def start_consumers(self) -> None:
        await self.consume(["order.placed"], Propagation.LINK, self.on_order_placed)
        await self.consume(["payment.failed", "payment.refunded"], Propagation.LINK,
                           self.on_payment_reversed, queue="inventory-compensation")

    async def reserve(self, order: dict) -> None:
        slow = self.inject("slow-inventory-db", order["order_id"])
        for item in order["items"]:
            # The stock check a missing index makes slow when the scenario is on.
            await self.db("SELECT quantity - reserved FROM stock WHERE sku = ? AND delay_ms(?) = 0",
                          (item["sku"], random.randint(300, 800) if slow else 0))
            await self.db("UPDATE stock SET reserved = reserved + ? WHERE sku = ?",
                          (item["quantity"], item["sku"]))

    async def release(self, order: dict) -> None:
        for item in order["items"]:
            await self.db("UPDATE stock SET reserved = max(reserved - ?, 0) WHERE sku = ?",
                          (item["quantity"], item["sku"]))

    async def reserve_http(self, request: web.Request) -> web.Response:
        order = await request.json()
        if self.inject("retry-storm", order["order_id"], chance=0.6):
            self.log.warning("reservation for %s refused: too many concurrent requests",
                             order["order_id"])
            return error_response(503, "inventory overloaded, retry later")
        await self.reserve(order)
        self.log.info("reserved stock for order %s", order["order_id"])
        return web.json_response({"order_id": order["order_id"], "status": "reserved"})

    async def release_http(self, request: web.Request) -> web.Response:
        order = await request.json()
        await self.release(order)
        self.log.info("released stock of order %s", order["order_id"])
        return web.json_response({"order_id": order["order_id"], "status": "released"})

    async def on_order_placed(self, event: dict, delivery) -> None:
        await self.reserve(event)
        self.log.info("reserved stock for order %s", event["order_id"])
        await self.publish("inventory.reserved", {"order_id": event["order_id"],
                                                  "items": event["items"],
                                                  "total": event["total"],
                                                  "address": event["address"]})

    async def on_payment_reversed(self, event: dict, delivery) -> None:
        await self.release(event)
        self.log.info("released stock of order %s after %s", event["order_id"],
                      delivery.routing_key)
        await self.publish("inventory.released", {"order_id": event["order_id"]})
