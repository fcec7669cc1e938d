"""Checkout: stores the order and publishes OrderPlaced; the rest of the fulfilment is
choreographed by the services that react to it."""

from __future__ import annotations

import random

from aiohttp import web

from tracekit.demo.services.base import Service


# Of the checkouts during the poison-message scenario, the share whose OrderPlaced is
# malformed. Checkouts are under half the traffic, so a lower share leaves a short scenario
# with too few poisoned flows to tell from noise (0.3 gave 4 of 25 checkouts in one run).
POISONED_SHARE = 0.5


class Checkout(Service):
    name = "checkout"

    def schema(self) -> str:
        return """CREATE TABLE IF NOT EXISTS orders (
                      order_id TEXT PRIMARY KEY, total REAL NOT NULL, state TEXT NOT NULL)"""

    def routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/checkout", self.checkout)

    async def checkout(self, request: web.Request) -> web.Response:
        order = await request.json()
        await self.db("INSERT OR REPLACE INTO orders VALUES (?, ?, 'placed')",
                      (order["order_id"], order["total"]))
        event = {"order_id": order["order_id"], "items": order["items"], "total": order["total"],
                 "address": order["address"], "customer": order["customer"], "schema": 1}
        if self.flags.active("poison-message") and random.random() < POISONED_SHARE:
            # A release of checkout that formats the amount for people, not for machines.
            event["total"] = f"{order['total']:,.2f} EUR".replace(".", ",")
        await self.publish("order.placed", event)
        self.log.info("order %s placed, total %.2f", order["order_id"], order["total"])
        return web.json_response({"order_id": order["order_id"], "status": "placed"})
