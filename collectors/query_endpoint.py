"""The local query endpoint: read-only SQL on the collector's store, answered in Arrow.

DuckDB lets one process hold a store file for writing, so while the collector runs, readers
(`tracekit sql`, the UI, reports) send their queries here. It listens on 127.0.0.1 on a
port of its own choosing; the port and a bearer token are in `<store>.collector.json`,
readable by the collector's user only.
"""

from __future__ import annotations

import asyncio
import hmac
import threading
from collections.abc import Callable
from concurrent.futures import Executor

import duckdb
import orjson
import pyarrow as pa
from aiohttp import web

from tracekit.analysis import referenced
from tracekit.errors import QueryError
from tracekit.readonly import run_read_only
from tracekit.remote import ARROW_STREAM
from tracekit.writable import WritableStore

MAX_TIMEOUT_S = 3600.0


class QueryEndpoint:
    def __init__(self, store: WritableStore, token: str, executor: Executor,
                 default_timeout_s: float, flush: Callable[[float], bool] | None = None,
                 analyzed: Callable[[float], bool] | None = None):
        self.store = store
        # Waits until what the collector acknowledged is in the store's tables (the writer's
        # mover): a query sees every export acknowledged before it.
        self.flush = flush
        # Waits until the analysis tables hold what is in the store (the analyst): a query
        # naming them sees the flows of every export acknowledged before it.
        self.analyzed = analyzed
        self.token = token
        self.executor = executor
        self.default_timeout_s = default_timeout_s
        self._running: set = set()
        self._lock = threading.Lock()

    def interrupt_all(self) -> None:
        """Stop every query in progress (the collector is shutting down)."""
        with self._lock:
            for cursor in self._running:
                cursor.interrupt()

    def app(self) -> web.Application:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_post("/query", self.query)
        return app

    async def query(self, request: web.Request) -> web.Response:
        offered = request.headers.get("Authorization", "")
        if not hmac.compare_digest(offered.encode(), f"Bearer {self.token}".encode()):
            return web.json_response({"error": "missing or wrong query token"}, status=401)
        try:
            payload = orjson.loads(await request.read())
            sql = payload["sql"]
            params = payload.get("params")
            timeout_s = min(float(payload.get("timeout_s") or self.default_timeout_s), MAX_TIMEOUT_S)
            max_rows = int(payload["max_rows"]) if payload.get("max_rows") is not None else None
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return web.json_response({"error": 'send JSON {"sql": "...", "params": [...]}'},
                                     status=400)
        loop = asyncio.get_running_loop()
        try:
            table = await loop.run_in_executor(self.executor, self._run, sql, params, timeout_s,
                                               max_rows)
        except QueryError as exc:
            return web.json_response({"error": str(exc), "type": type(exc).__name__}, status=400)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as stream:
            stream.write_table(table)
        return web.Response(body=sink.getvalue().to_pybytes(), content_type=ARROW_STREAM)

    def _run(self, sql: str, params: list | dict | None, timeout_s: float,
             max_rows: int | None) -> pa.Table:
        if self.flush is not None and not self.flush(timeout_s):
            raise QueryError(f"the collector did not store what it acknowledged within "
                             f"{timeout_s:.0f} s (its writer is far behind or failing; see its "
                             "log); query again, or with a longer timeout")
        if self.analyzed is not None and referenced(sql) and not self.analyzed(timeout_s):
            raise QueryError(f"the collector's analysis did not catch up within {timeout_s:.0f} s "
                             "(see its log); query again, or with a longer timeout")
        cursor = self.store.conn.cursor()
        with self._lock:
            self._running.add(cursor)
        try:
            return run_read_only(cursor, sql, params, lambda rel: rel.to_arrow_table(), timeout_s,
                                 max_rows)
        except duckdb.InterruptException:
            raise QueryError("the collector is shutting down; query again once it is back "
                             "(or read the file directly when it has stopped)") from None
        finally:
            with self._lock:
                self._running.discard(cursor)
            cursor.close()
