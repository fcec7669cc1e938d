"""OTLP/HTTP: POST /v1/traces and /v1/logs, protobuf or JSON, plain or gzip; and GET /metrics,
the collector's Prometheus metrics (docs/guides/metrics.md).

Status codes follow the OTLP specification: 200 (with partial success), 400 for a body that
does not decode, 404 for /v1/metrics, 405 for another method, 413 when the (decompressed)
body is over the limit, 415 for an unsupported content type or encoding, and 503 with
Retry-After when the writer is behind. Error bodies are google.rpc.Status messages in the
request's content type.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from google.protobuf import json_format
from google.rpc import code_pb2, status_pb2

from collectors.admission import Admission
from collectors.auth import UNAUTHENTICATED_MESSAGE, authorized
from collectors.decode_pool import DecodePool
from collectors.decoding import JSON, LOGS, PROTOBUF, TRACES, Refusal
from collectors.ingest import METRICS_UNSUPPORTED, decode_and_commit, response, retry_after_header
from collectors.telemetry import Telemetry
from tracekit.errors import Overloaded
from tracekit.metrics.exposition import wants_openmetrics
from tracekit.writer import Writer

log = logging.getLogger(__name__)


def _status_response(content_type: str, status: int, code: int, message: str,
                     headers: dict | None = None) -> web.Response:
    body = status_pb2.Status(code=code, message=message)
    if content_type == JSON:
        return web.Response(status=status, body=json_format.MessageToJson(body, indent=None),
                            content_type=JSON, headers=headers)
    return web.Response(status=status, body=body.SerializeToString(), content_type=PROTOBUF,
                        headers=headers)


class OtlpHttpReceiver:
    """The aiohttp application for OTLP/HTTP."""

    def __init__(self, writer: Writer, decoders: DecodePool, max_body_bytes: int,
                 auth_token: str | None = None, admission: Admission | None = None,
                 telemetry: Telemetry | None = None):
        self.writer = writer
        self.telemetry = telemetry
        self.admission = admission
        self.decoders = decoders
        self.max_body_bytes = max_body_bytes
        self.auth_token = auth_token

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.max_body_bytes)
        app.router.add_post("/v1/traces", self.traces)
        app.router.add_post("/v1/logs", self.logs)
        for path in ("/v1/traces", "/v1/logs"):
            app.router.add_route("*", path, self.wrong_method)
        app.router.add_route("*", "/v1/metrics", self.metrics)
        if self.telemetry is not None:
            app.router.add_get("/metrics", self.prometheus)
        return app

    async def traces(self, request: web.Request) -> web.Response:
        return await self._export(request, TRACES)

    async def logs(self, request: web.Request) -> web.Response:
        return await self._export(request, LOGS)

    async def wrong_method(self, request: web.Request) -> web.Response:
        content_type = JSON if request.content_type.lower() == JSON else PROTOBUF
        return _status_response(content_type, 405, code_pb2.INVALID_ARGUMENT,
                                f"{request.method} is not supported: export with POST",
                                {"Allow": "POST"})

    async def metrics(self, request: web.Request) -> web.Response:
        content_type = JSON if request.content_type.lower() == JSON else PROTOBUF
        return _status_response(content_type, 404, code_pb2.UNIMPLEMENTED, METRICS_UNSUPPORTED)

    async def prometheus(self, request: web.Request) -> web.Response:
        """The Prometheus text format, or OpenMetrics (with exemplars) when the Accept header
        prefers it; behind the bearer token when the collector has one."""
        if not authorized(request.headers.get("Authorization"), self.auth_token):
            return web.Response(status=401, text=UNAUTHENTICATED_MESSAGE + "\n",
                                headers={"WWW-Authenticate": "Bearer"})
        openmetrics = wants_openmetrics(request.headers.get("Accept"))
        body, content_type = await asyncio.get_running_loop().run_in_executor(
            None, self.telemetry.scrape, openmetrics)
        return web.Response(body=body.encode(), headers={"Content-Type": content_type})

    async def _export(self, request: web.Request, kind: str) -> web.Response:
        if not authorized(request.headers.get("Authorization"), self.auth_token):
            return _status_response(JSON if request.content_type.lower() == JSON else PROTOBUF,
                                    401, code_pb2.UNAUTHENTICATED, UNAUTHENTICATED_MESSAGE,
                                    {"WWW-Authenticate": "Bearer"})
        content_type = request.content_type.lower()
        if content_type not in (PROTOBUF, JSON):
            return _status_response(
                PROTOBUF, 415, code_pb2.INVALID_ARGUMENT,
                f"unsupported Content-Type {request.content_type!r}: use {PROTOBUF} or {JSON}")
        if self.admission is not None:
            try:
                self.admission.check()      # before reading the body: a refusal costs nothing
            except Overloaded as exc:
                return _status_response(content_type, 503, code_pb2.UNAVAILABLE, str(exc),
                                        {"Retry-After": str(max(1, round(exc.retry_after_s)))})
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _status_response(content_type, 413, code_pb2.RESOURCE_EXHAUSTED,
                                    f"body is over the {self.max_body_bytes} byte limit; "
                                    "send smaller batches")
        encoding = request.headers.get("Content-Encoding", "identity")
        batch = await decode_and_commit(
            self.writer, lambda: self.decoders.submit(kind, content_type, encoding, body), "otlp-http",
            self.telemetry)
        if isinstance(batch, Refusal):
            return _status_response(content_type, batch.http_status, batch.rpc_code, batch.message,
                                    retry_after_header(batch))
        answer = response(kind, batch)
        if content_type == JSON:
            return web.Response(body=json_format.MessageToJson(answer, indent=None), content_type=JSON)
        return web.Response(body=answer.SerializeToString(), content_type=PROTOBUF)
