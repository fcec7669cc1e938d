"""The order orchestrator: a saga that calls inventory, payment and shipping in turn and
compensates (refund, release) when a step fails; and returns, which end with an event."""

from __future__ import annotations

from aiohttp import web
from opentelemetry.trace import Status, StatusCode

from tracekit.demo.resilience import CircuitBreaker, CircuitOpen, RetryPolicy, with_retries
from tracekit.demo.services.base import Service, UpstreamError, error_response


class Orders(Service):
    name = "orders"

    def schema(self) -> str:
        return """CREATE TABLE IF NOT EXISTS sagas (
                      order_id TEXT PRIMARY KEY, state TEXT NOT NULL, reason TEXT)"""

    def routes(self, router: web.UrlDispatcher) -> None:
        self.payment_breaker = CircuitBreaker("payment", self.tracer, threshold=5, cooldown_s=2.0)
        self.retry = RetryPolicy(attempts=4)
        router.add_post("/orders", self.place_order)
        router.add_post("/returns", self.return_order)

    def peer_url(self, peer: str) -> str:
        if peer == "payment" and self.flags.active("payment-unreachable"):
            return self.ctx.unreachable_url
        return super().peer_url(peer)

    async def call(self, peer: str, path: str, payload: dict, timeout_s: float = 5.0) -> dict:
        if peer == "payment":
            self.inject("payment-unreachable", payload.get("order_id"))
        return await super().call(peer, path, payload, timeout_s)

    async def _charge(self, order: dict) -> dict:
        async def attempt():
            return await self.call("payment", "/charge", order, timeout_s=2.0)
        return await self.payment_breaker.call(
            lambda: with_retries(attempt, RetryPolicy(attempts=2)))

    async def place_order(self, request: web.Request) -> web.Response:
        order = await request.json()
        order_id = order["order_id"]
        await self.db("INSERT OR REPLACE INTO sagas VALUES (?, 'started', NULL)", (order_id,))
        done: list[str] = []
        with self.tracer.start_as_current_span("saga place-order",
                                               attributes={"order.id": order_id}) as saga:
            try:
                await with_retries(lambda: self.call("inventory", "/reserve", order, timeout_s=2.0),
                                   self.retry)
                done.append("inventory")
                await self._charge(order)
                done.append("payment")
                await self.call("shipping", "/shipments", order, timeout_s=1.5)
            except (UpstreamError, CircuitOpen) as exc:
                saga.set_status(Status(StatusCode.ERROR, str(exc)))
                saga.set_attribute("error.type", type(exc).__qualname__)
                self.log.warning("order %s: step failed (%s); compensating %s", order_id, exc,
                                 ", ".join(reversed(done)) or "nothing")
                await self._compensate(order, done)
                await self.db("UPDATE sagas SET state = 'compensated', reason = ? WHERE order_id = ?",
                              (str(exc), order_id))
                status = getattr(exc, "status", 503)
                return error_response(504 if status == 504 else 409 if status < 500 else 502,
                                      f"order {order_id} not placed: {exc}")
        await self.db("UPDATE sagas SET state = 'confirmed' WHERE order_id = ?", (order_id,))
        self.log.info("order %s confirmed", order_id)
        return web.json_response({"order_id": order_id, "status": "confirmed"})

    async def _compensate(self, order: dict, done: list[str]) -> None:
        if not done:
            return
        with self.tracer.start_as_current_span(
                "saga compensate", attributes={"order.id": order["order_id"],
                                               "saga.compensation": True,
                                               "saga.compensated_steps": list(reversed(done))}):
            if "payment" in done:
                await self.call("payment", "/refund", order)
            if "inventory" in done:
                await self.call("inventory", "/release", order)

    async def return_order(self, request: web.Request) -> web.Response:
        order = await request.json()
        try:
            await self.call("inventory", "/restock", order)
            await self.call("payment", "/refund", order)
        except UpstreamError as exc:
            return error_response(502, f"return of {order['order_id']} failed: {exc}")
        await self.publish("return.completed", {"order_id": order["order_id"],
                                                "total": order["total"]})
        self.log.info("return of order %s completed", order["order_id"])
        return web.json_response({"order_id": order["order_id"], "status": "returned"})
