"""Zipkin v2 intake: POST /api/v2/spans, JSON or protobuf (zipkin.proto3 ListOfSpans), plain
or gzip, as Zipkin's own server takes it and every Zipkin reporter sends it.

A thin adapter over the OTLP path: the body is converted to OTLP/JSON in a decode worker
(tracekit/formats/zipkin.py), queued and committed like an OTLP export, and deduplicated like
one. Answers follow Zipkin's server: 202 once the spans are committed, 400 with a plain-text
reason for a body that does not decode, 413 over the size limit, 415 for another content type
or encoding, 503 with Retry-After when the collector is behind (reporters retry or drop).
"""

from __future__ import annotations

from aiohttp import web

from collectors.admission import Admission
from collectors.auth import UNAUTHENTICATED_MESSAGE, authorized
from collectors.decode_pool import DecodePool
from collectors.decoding import JSON, PROTOBUF, Refusal
from collectors.ingest import decode_and_commit, retry_after_header
from collectors.telemetry import Telemetry
from tracekit.errors import Overloaded
from tracekit.writer import Writer

SPANS_PATH = "/api/v2/spans"
# Zipkin's server also takes the protobuf type under this name.
_CONTENT_TYPES = {JSON: JSON, "": JSON, PROTOBUF: PROTOBUF, "application/protobuf": PROTOBUF}


def _text(status: int, message: str, headers: dict | None = None) -> web.Response:
    return web.Response(status=status, text=message + "\n", headers=headers)


class ZipkinReceiver:
    """The aiohttp application for Zipkin v2."""

    def __init__(self, writer: Writer, decoders: DecodePool, max_body_bytes: int,
                 auth_token: str | None = None, admission: Admission | None = None,
                 keep_proxy_spans: bool = False, telemetry: Telemetry | None = None):
        self.writer = writer
        self.telemetry = telemetry      # counts what it receives for GET /metrics
        self.decoders = decoders
        self.max_body_bytes = max_body_bytes
        self.auth_token = auth_token
        self.admission = admission
        self.keep_proxy_spans = keep_proxy_spans

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.max_body_bytes)
        app.router.add_post(SPANS_PATH, self.spans)
        app.router.add_route("*", SPANS_PATH, self.wrong_method)
        app.router.add_route("*", "/api/v1/spans", self.v1)
        return app

    async def wrong_method(self, request: web.Request) -> web.Response:
        return _text(405, f"{request.method} is not supported: send spans with POST", {"Allow": "POST"})

    async def v1(self, request: web.Request) -> web.Response:
        return _text(404, "Zipkin v1 spans are not taken: configure the reporter for v2 "
                          f"({SPANS_PATH}, JSON or PROTO3)")

    async def spans(self, request: web.Request) -> web.Response:
        if not authorized(request.headers.get("Authorization"), self.auth_token):
            return _text(401, UNAUTHENTICATED_MESSAGE, {"WWW-Authenticate": "Bearer"})
        content_type = _CONTENT_TYPES.get(request.content_type.lower()
                                          if "Content-Type" in request.headers else "")
        if content_type is None:
            return _text(415, f"unsupported Content-Type {request.content_type!r}: "
                              f"use {JSON} or {PROTOBUF} (zipkin.proto3 ListOfSpans)")
        if self.admission is not None:
            try:
                self.admission.check()
            except Overloaded as exc:
                return _text(503, str(exc), {"Retry-After": str(max(1, round(exc.retry_after_s)))})
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _text(413, f"body is over the {self.max_body_bytes} byte limit; send smaller batches")
        encoding = request.headers.get("Content-Encoding", "identity")
        batch = await decode_and_commit(
            self.writer, lambda: self.decoders.submit_zipkin(content_type, encoding, body,
                                                             self.keep_proxy_spans), "zipkin",
            self.telemetry)
        if isinstance(batch, Refusal):
            return _text(batch.http_status, batch.message, retry_after_header(batch))
        if batch.rejected_spans.count:   # Zipkin has no partial success: say it in the body
            return _text(202, batch.rejected_spans.message("spans"))
        return web.Response(status=202)
