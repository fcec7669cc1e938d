"""OTLP/HTTP: POST /v1/traces and /v1/logs, protobuf or JSON, plain or gzip.

Status codes follow the OTLP specification: 200 (with partial success), 400 for a body that
does not decode, 404 for /v1/metrics, 405 for another method, 413 when the (decompressed)
body is over the limit, 415 for an unsupported content type or encoding, and 503 with
Retry-After when the writer is behind. Error bodies are google.rpc.Status messages in the
request's content type.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from concurrent.futures import Executor
from typing import Any, Callable

from aiohttp import web
from google.protobuf import json_format
from google.protobuf.message import DecodeError as ProtobufDecodeError
from google.rpc import code_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from collectors.ingest import METRICS_UNSUPPORTED, Accepted, accept_logs, accept_traces
from tracekit.errors import DecodeError, Overloaded, WriterStopped
from tracekit.otlp import json as otlp_json
from tracekit.writer import Writer

log = logging.getLogger(__name__)

PROTOBUF = "application/x-protobuf"
JSON = "application/json"


class RequestError(Exception):
    def __init__(self, status: int, code: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.headers = headers or {}


def _status_response(content_type: str, status: int, code: int, message: str,
                     headers: dict | None = None) -> web.Response:
    body = status_pb2.Status(code=code, message=message)
    if content_type == JSON:
        return web.Response(status=status, body=json_format.MessageToJson(body, indent=None),
                            content_type=JSON, headers=headers)
    return web.Response(status=status, body=body.SerializeToString(), content_type=PROTOBUF,
                        headers=headers)


def _content_type(request: web.Request) -> str:
    content_type = request.content_type.lower()
    if content_type not in (PROTOBUF, JSON):
        raise RequestError(
            415, code_pb2.INVALID_ARGUMENT,
            f"unsupported Content-Type {request.content_type!r}: use {PROTOBUF} or {JSON}",
        )
    return content_type


def _decompress(request: web.Request, body: bytes, limit: int) -> bytes:
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "deflate"):
        raise RequestError(415, code_pb2.INVALID_ARGUMENT,
                           f"unsupported Content-Encoding {encoding!r}: use gzip or none")
    wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
    inflater = zlib.decompressobj(wbits)
    try:
        # Stop at limit + 1 bytes: a gzip bomb never gets inflated past the limit.
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise RequestError(400, code_pb2.INVALID_ARGUMENT, f"body is not valid {encoding}: {exc}") from None
    if len(out) > limit:
        raise RequestError(413, code_pb2.RESOURCE_EXHAUSTED,
                           f"decompressed body is over the {limit} byte limit; send smaller batches")
    return out


def _parse(content_type: str, data: bytes, message_type: type) -> Any:
    if content_type == PROTOBUF:
        message = message_type()
        try:
            message.ParseFromString(data)
        except (ProtobufDecodeError, RecursionError, ValueError) as exc:
            raise DecodeError(f"body is not a valid protobuf {message_type.__name__}: {exc}") from None
        return message
    document = otlp_json.parse_document(data)
    if message_type is ExportTraceServiceRequest:
        return otlp_json.traces_request(document)
    return otlp_json.logs_request(document)


class OtlpHttpReceiver:
    """The aiohttp application for OTLP/HTTP."""

    def __init__(self, writer: Writer, max_body_bytes: int, executor: Executor):
        self.writer = writer
        self.max_body_bytes = max_body_bytes
        self.executor = executor

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.max_body_bytes)
        app.router.add_post("/v1/traces", self.traces)
        app.router.add_post("/v1/logs", self.logs)
        app.router.add_route("*", "/v1/metrics", self.metrics)
        return app

    async def traces(self, request: web.Request) -> web.Response:
        return await self._export(request, ExportTraceServiceRequest, accept_traces)

    async def logs(self, request: web.Request) -> web.Response:
        return await self._export(request, ExportLogsServiceRequest, accept_logs)

    async def metrics(self, request: web.Request) -> web.Response:
        content_type = JSON if request.content_type.lower() == JSON else PROTOBUF
        return _status_response(content_type, 404, code_pb2.UNIMPLEMENTED, METRICS_UNSUPPORTED)

    async def _export(self, request: web.Request, message_type: type,
                      accept: Callable[..., Accepted]) -> web.Response:
        content_type = JSON if request.content_type.lower() == JSON else PROTOBUF
        try:
            content_type = _content_type(request)
            try:
                body = await request.read()
            except web.HTTPRequestEntityTooLarge:
                raise RequestError(413, code_pb2.RESOURCE_EXHAUSTED,
                                   f"body is over the {self.max_body_bytes} byte limit; "
                                   "send smaller batches") from None
            loop = asyncio.get_running_loop()
            accepted = await loop.run_in_executor(
                self.executor, self._decode_and_submit, request, content_type, body,
                message_type, accept)
            if accepted.committed is not None:
                await asyncio.wrap_future(accepted.committed)
        except RequestError as exc:
            return _status_response(content_type, exc.status, exc.code, str(exc), exc.headers)
        except DecodeError as exc:
            return _status_response(content_type, 400, code_pb2.INVALID_ARGUMENT, str(exc))
        except Overloaded as exc:
            return _status_response(content_type, 503, code_pb2.UNAVAILABLE, str(exc),
                                    {"Retry-After": str(max(1, round(exc.retry_after_s)))})
        except WriterStopped as exc:
            return _status_response(content_type, 503, code_pb2.UNAVAILABLE, str(exc),
                                    {"Retry-After": "1"})
        except Exception as exc:  # the commit failed; the client may retry
            log.error("OTLP/HTTP export failed: %s", exc)
            return _status_response(content_type, 503, code_pb2.UNAVAILABLE,
                                    f"the store could not commit: {exc}", {"Retry-After": "1"})
        if content_type == JSON:
            return web.Response(body=json_format.MessageToJson(accepted.response, indent=None),
                                content_type=JSON)
        return web.Response(body=accepted.response.SerializeToString(), content_type=PROTOBUF)

    def _decode_and_submit(self, request: web.Request, content_type: str, body: bytes,
                           message_type: type, accept: Callable[..., Accepted]) -> Accepted:
        data = _decompress(request, body, self.max_body_bytes)
        message = _parse(content_type, data, message_type)
        return accept(self.writer, message, "otlp-http")
