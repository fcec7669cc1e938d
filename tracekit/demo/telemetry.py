"""One OpenTelemetry pipeline per service: traces and logs over OTLP, the official
instrumentation for aiohttp (server and client) and sqlite3, and Python logging bridged to
OpenTelemetry logs with the trace context.

Several services can share one process (`tracekit demo`), so nothing here touches the global
providers: each service gets its own tracer and logger provider, with its own `service.name`.
Exporters follow the standard `OTEL_EXPORTER_OTLP_*` variables unless an endpoint is given.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from opentelemetry import trace
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

# New HTTP attribute names (http.request.method, http.response.status_code, url.full), as the
# semantic conventions have them since 1.23; set before the instrumentation reads it.
os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "http")

SHOP_VERSION = "1.4.2"
EXPORT_DELAY_MS = 200   # short, so a live view sees flows within a second


@dataclass(frozen=True)
class OtlpTarget:
    """Where telemetry goes: an endpoint and 'grpc' or 'http/protobuf'; None reads OTEL_* vars."""

    endpoint: str | None = None
    protocol: str | None = None

    @property
    def resolved_protocol(self) -> str:
        protocol = (self.protocol or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "grpc")
        if protocol not in ("grpc", "http/protobuf"):
            raise ValueError(f"OTLP protocol {protocol!r} is not supported by the demo; "
                             "use grpc or http/protobuf")
        return protocol


def _exporters(target: OtlpTarget):
    if target.resolved_protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        if target.endpoint is None:
            return OTLPSpanExporter(), OTLPLogExporter()
        return (OTLPSpanExporter(endpoint=target.endpoint, insecure=True),
                OTLPLogExporter(endpoint=target.endpoint, insecure=True))
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    if target.endpoint is None:
        return OTLPSpanExporter(), OTLPLogExporter()
    base = target.endpoint.rstrip("/")
    return OTLPSpanExporter(endpoint=f"{base}/v1/traces"), OTLPLogExporter(endpoint=f"{base}/v1/logs")


def _server_middleware_factory():
    """The official aiohttp server middleware, bound to a tracer provider of our choosing.

    `create_aiohttp_middleware` needs the module's instruments, which only `instrument()` sets
    up; `instrument()` also swaps `web.Application` for every app in the process, so it is undone
    at once (the collector and other services in the same process must not be patched).
    """
    from opentelemetry.instrumentation.aiohttp_server import (AioHttpServerInstrumentor,
                                                              create_aiohttp_middleware)

    instrumentor = AioHttpServerInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()
        instrumentor.uninstrument()
    return create_aiohttp_middleware


class ServiceTelemetry:
    """The tracer, logger and instrumentation of one service."""

    def __init__(self, service: str, target: OtlpTarget, *, instance: str | None = None) -> None:
        self.service = service
        attributes = {
            "service.name": service,
            "service.namespace": "shop",
            "service.version": SHOP_VERSION,
            "service.instance.id": instance or f"{service}-{socket.gethostname()}-{os.getpid()}",
            "deployment.environment.name": "demo",
            "host.name": socket.gethostname(),
        }
        # OTEL_RESOURCE_ATTRIBUTES is honoured by Resource.create; OTEL_SERVICE_NAME is not
        # (several services share a process), so service.name always wins here.
        self.resource = Resource.create(attributes)
        span_exporter, log_exporter = _exporters(target)
        self.tracer_provider = TracerProvider(resource=self.resource)
        self.tracer_provider.add_span_processor(
            BatchSpanProcessor(span_exporter, schedule_delay_millis=EXPORT_DELAY_MS))
        self.logger_provider = LoggerProvider(resource=self.resource)
        self.logger_provider.add_log_record_processor(
            BatchLogRecordProcessor(log_exporter, schedule_delay_millis=EXPORT_DELAY_MS))
        self.tracer = self.tracer_provider.get_tracer("tracekit.demo.shop", SHOP_VERSION)
        self.log = self._bridge_logging()

    def _bridge_logging(self) -> logging.Logger:
        from opentelemetry.instrumentation.logging.handler import LoggingHandler

        log = logging.getLogger(f"shop.{self.service}")   # one per service and process
        log.setLevel(logging.INFO)
        log.propagate = False
        self._log_handler = LoggingHandler(level=logging.INFO, logger_provider=self.logger_provider)
        log.addHandler(self._log_handler)
        return log

    def server_middleware(self):
        """aiohttp middleware: a SERVER span per request; `/_` paths (flags, health) untraced."""
        traced = _server_middleware_factory()(tracer_provider=self.tracer_provider)

        @web.middleware
        async def middleware(request: web.Request, handler):
            if request.path.startswith("/_"):
                return await handler(request)
            return await traced(request, handler)

        return middleware

    def client_session(self, **kwargs) -> aiohttp.ClientSession:
        """An aiohttp client session whose requests are CLIENT spans and carry traceparent."""
        from opentelemetry.instrumentation.aiohttp_client import create_trace_config

        from tracekit.demo.resilience import resend_count

        def request_hook(span: trace.Span, params) -> None:
            attempt = resend_count.get()
            if attempt and span.is_recording():
                span.set_attribute("http.request.resend_count", attempt)

        config = create_trace_config(tracer_provider=self.tracer_provider, request_hook=request_hook)
        return aiohttp.ClientSession(trace_configs=[config], **kwargs)

    def instrument_db(self, connection):
        """The sqlite3 connection, with a CLIENT span per statement (db.* attributes)."""
        from opentelemetry.instrumentation.sqlite3 import SQLite3Instrumentor

        return SQLite3Instrumentor.instrument_connection(connection,
                                                         tracer_provider=self.tracer_provider)

    def flush(self, timeout_ms: int = 30_000) -> bool:
        spans = self.tracer_provider.force_flush(timeout_ms)
        logs = self.logger_provider.force_flush(timeout_ms)
        return bool(spans and logs)

    def shutdown(self) -> None:
        self.log.removeHandler(self._log_handler)
        self.tracer_provider.shutdown()
        self.logger_provider.shutdown()
