"""The carrier's quoting API (a third party, as far as the shop is concerned)."""

from __future__ import annotations

import asyncio
import random

from aiohttp import web

from tracekit.demo.services.base import Service


class Carrier(Service):
    name = "carrier"

    def routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/quote", self.quote)

    async def quote(self, request: web.Request) -> web.Response:
        body = await request.json()
        slow = self.inject("timeout-cascade", body.get("order_id"))
        await asyncio.sleep(4.0 if slow else random.uniform(0.02, 0.06))
        return web.json_response({"order_id": body.get("order_id"),
                                  "price": round(random.uniform(4, 12), 2)})
