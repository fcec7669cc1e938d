"""What every shop service has: an instrumented HTTP server and client, a SQLite database,
the broker, the fault flags and the ground-truth recorder."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import random
import socket
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiohttp import web
from opentelemetry import trace
from opentelemetry.trace import Status, StatusCode

from tracekit.demo import messaging
from tracekit.demo.faults import Flags, GroundTruth, scenario
from tracekit.demo.resilience import Retryable
from tracekit.demo.telemetry import ServiceTelemetry


class UpstreamError(Exception):
    """A peer answered with an error status (or not at all)."""

    def __init__(self, peer: str, status: int, reason: str) -> None:
        super().__init__(f"{peer} answered {status}: {reason}")
        self.peer, self.status, self.reason = peer, status, reason


class RetryableUpstream(UpstreamError, Retryable):
    pass


@dataclass
class ShopContext:
    """What a service is given: its peers' URLs, the broker, the flags and where to keep data."""

    telemetry: ServiceTelemetry
    broker: object
    flags: Flags
    ground_truth: GroundTruth
    peers: dict[str, str]
    data_dir: Path
    redis_url: str | None = None   # services that keep counters use Redis when it is given
    unreachable_url: str = field(default_factory=lambda: f"http://127.0.0.1:{closed_port()}")


def closed_port() -> int:
    """A localhost port nothing listens on: connecting to it is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Service:
    name = "service"
    uses_redis = False

    def __init__(self, ctx: ShopContext) -> None:
        self.ctx = ctx
        self.telemetry = ctx.telemetry
        self.tracer = ctx.telemetry.tracer
        self.log = ctx.telemetry.log
        self.flags = ctx.flags
        self.broker = ctx.broker
        self.app = web.Application(middlewares=[self.telemetry.server_middleware()])
        self.app.router.add_get("/_health", self._health)
        self.app.router.add_get("/_flags", self._get_flags)
        self.app.router.add_put("/_flags", self._put_flags)
        self.http: aiohttp.ClientSession | None = None
        self.redis = None
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._db_pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix=f"{self.name}-db")
        self._runner: web.AppRunner | None = None
        self.url: str | None = None
        self.subscriptions: list = []

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self.http = self.telemetry.client_session(timeout=aiohttp.ClientTimeout(total=10))
        self._open_db()
        if self.uses_redis and self.ctx.redis_url:
            await self._open_redis(self.ctx.redis_url)
        self.routes(self.app.router)
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = site._server.sockets[0].getsockname()[1]
        self.url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{bound}"
        return self.url

    async def start_consumers(self) -> None:
        """Subscribe to the broker (after every service is listening)."""

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self.http is not None:
            await self.http.close()
        if self.redis is not None:
            await self.redis.aclose()
        self._db_pool.shutdown(wait=True)
        for connection in self._connections:
            connection.close()

    def routes(self, router: web.UrlDispatcher) -> None:
        """Add the service's HTTP routes."""

    # --- flags and ground truth ----------------------------------------------------------

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"service": self.name, "status": "ok"})

    async def _get_flags(self, request: web.Request) -> web.Response:
        return web.json_response({"scenario": self.flags.scenario})

    async def _put_flags(self, request: web.Request) -> web.Response:
        body = await request.json()
        try:
            self.flags.set(body["scenario"])
        except (KeyError, ValueError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"scenario": self.flags.scenario})

    def inject(self, name: str, order_id: str | None, chance: float = 1.0) -> bool:
        """Whether scenario `name` strikes this request; if it does, record the ground truth."""
        if not self.flags.active(name) or random.random() >= chance:
            return False
        self.record_fault(name, order_id)
        return True

    def record_fault(self, name: str, order_id: str | None) -> None:
        """Ground truth: scenario `name` affected this order, here, in the current span."""
        s = scenario(name)
        self.ctx.ground_truth.fault(name, s.service, s.operation, order_id)
        trace.get_current_span().add_event("fault injected", {"tracekit.demo.scenario": name})

    # --- database ------------------------------------------------------------------------

    def schema(self) -> str:
        return ""

    def _connect(self) -> sqlite3.Connection:
        path = self.ctx.data_dir / f"{self.name}.sqlite3"
        connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None,
                                     timeout=10)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.create_function("delay_ms", 1, _delay_ms)
        self._connections.append(connection)
        return connection

    def _open_db(self) -> None:
        if self.schema():
            self._connect().executescript(self.schema())

    async def _open_redis(self, url: str) -> None:
        """A Redis client whose commands are CLIENT spans (official instrumentation)."""
        import redis.asyncio as aioredis
        from opentelemetry.instrumentation.redis import RedisInstrumentor

        client = aioredis.Redis.from_url(url, socket_connect_timeout=5)
        try:
            await client.ping()
        except (OSError, aioredis.RedisError) as exc:
            await client.aclose()
            raise ConnectionError(f"cannot reach Redis for {self.name}: {exc}. Is it running? "
                                  "Leave out --redis to keep its data in SQLite.") from exc
        RedisInstrumentor.instrument_client(client, tracer_provider=self.telemetry.tracer_provider)
        self.redis = client

    async def db(self, statement: str, params: tuple = ()) -> list[tuple]:
        """Run one statement on this service's pool (its span is a child of the current one).

        Each pool thread has its own connection: SQLite in WAL mode reads concurrently."""
        def run():
            connection = getattr(self._local, "connection", None)
            if connection is None:
                connection = self._local.connection = self.telemetry.instrument_db(self._connect())
            cursor = connection.cursor()
            cursor.execute(statement, params)
            return cursor.fetchall()
        context = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(
            self._db_pool, functools.partial(context.run, run))

    # --- HTTP calls ----------------------------------------------------------------------

    def peer_url(self, peer: str) -> str:
        return self.ctx.peers[peer]

    async def call(self, peer: str, path: str, payload: dict, timeout_s: float = 5.0) -> dict:
        """POST JSON to a peer; 5xx and connection failures raise (503 and refused: retryable)."""
        url = f"{self.peer_url(peer)}{path}"
        try:
            async with asyncio.timeout(timeout_s):
                async with self.http.post(url, json=payload) as response:
                    body = await response.json(content_type=None)
                    if response.status == 503:
                        raise RetryableUpstream(peer, 503, body.get("error", "unavailable"))
                    if response.status >= 400:
                        raise UpstreamError(peer, response.status, body.get("error", ""))
                    return body
        except aiohttp.ClientConnectionError as exc:
            raise RetryableUpstream(peer, 503, f"cannot connect: {exc}") from exc
        except TimeoutError as exc:
            raise UpstreamError(peer, 504, f"deadline of {timeout_s:g}s exceeded") from exc

    # --- messaging -----------------------------------------------------------------------

    async def publish(self, event: str, payload: dict) -> str:
        payload = {**payload, "sent_at_ns": time.time_ns()}
        return await messaging.publish(self.tracer, self.broker, event, payload)

    async def consume(self, events: list[str], mode: messaging.Propagation, handler,
                      queue: str | None = None):
        wrapped = messaging.consumer(self.tracer, self.broker, self.name, mode, handler)
        name = f"{self.broker.exchange.rsplit('.', 1)[0]}.{queue or self.name}"
        subscription = await self.broker.subscribe(name, events, wrapped)
        self.subscriptions.append(subscription)
        return subscription


def fail_span(exc: BaseException, message: str | None = None) -> None:
    """Mark the current span failed with an exception event, without raising."""
    span = trace.get_current_span()
    span.record_exception(exc)
    span.set_attribute("error.type", type(exc).__qualname__)
    span.set_status(Status(StatusCode.ERROR, message or str(exc)))


def error_response(status: int, message: str, exc: BaseException | None = None) -> web.Response:
    """A JSON error answer; on 5xx the server span also gets the exception event."""
    if exc is not None:
        trace.get_current_span().record_exception(exc)
    return web.json_response({"error": message}, status=status)


def _delay_ms(ms):
    if ms:
        time.sleep(ms / 1000)
    return 0
