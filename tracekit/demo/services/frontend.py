"""The shop's front door: the browser's requests, each forwarded to the service that owns it."""

from __future__ import annotations

from aiohttp import web

from tracekit.demo.services.base import Service, UpstreamError, error_response


class Frontend(Service):
    name = "frontend"
    # Where each public route goes: (peer, path, deadline in seconds).
    ROUTES = {
        "/api/orders": ("orders", "/orders", 6.0),       # the orchestrated saga
        "/api/checkout": ("checkout", "/checkout", 3.0),  # the choreographed fulfilment
        "/api/returns": ("orders", "/returns", 6.0),     # a hybrid of both
    }

    def routes(self, router: web.UrlDispatcher) -> None:
        for path in self.ROUTES:
            router.add_post(path, self.forward)

    async def forward(self, request: web.Request) -> web.Response:
        payload = await request.json()
        peer, path, deadline = self.ROUTES[request.path]
        try:
            answer = await self.call(peer, path, payload, timeout_s=deadline)
        except UpstreamError as exc:
            self.log.error("order %s failed: %s", payload.get("order_id"), exc)
            return error_response(502 if exc.status < 500 or exc.status == 503 else exc.status,
                                  str(exc))
        self.log.info("order %s: %s", payload.get("order_id"), answer.get("status"))
        return web.json_response(answer, status=201 if peer == "orders" else 202)
