"""Real OpenTelemetry SDK pipelines (tracer and logger providers) pointed at a collector."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor


def exporters(transport: str, address: str, headers: dict | None = None):
    """(span exporter, log exporter) for 'grpc', 'grpc-gzip', 'http' or 'http-gzip'.

    The gzip variants are what the OpenTelemetry Collector's otlp and otlphttp exporters send
    by default."""
    if transport.startswith("grpc"):
        from grpc import Compression as GrpcCompression
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        compression = GrpcCompression.Gzip if transport == "grpc-gzip" else None
        return (OTLPSpanExporter(endpoint=f"http://{address}", insecure=True, compression=compression,
                                 headers=headers),
                OTLPLogExporter(endpoint=f"http://{address}", insecure=True, compression=compression,
                                headers=headers))
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    compression = Compression.Gzip if transport == "http-gzip" else Compression.NoCompression
    return (OTLPSpanExporter(endpoint=f"http://{address}/v1/traces", compression=compression,
                             headers=headers),
            OTLPLogExporter(endpoint=f"http://{address}/v1/logs", compression=compression,
                            headers=headers))


@dataclass
class Pipeline:
    tracer_provider: TracerProvider
    logger_provider: LoggerProvider
    logger: logging.Logger

    @property
    def tracer(self) -> trace.Tracer:
        return self.tracer_provider.get_tracer("tests.sdk", "1.2.3")

    def flush(self) -> None:
        assert self.tracer_provider.force_flush(30_000), "span export did not finish"
        assert self.logger_provider.force_flush(30_000), "log export did not finish"

    def shutdown(self) -> None:
        self.logger.removeHandler(self.logger.handlers[0])
        self.tracer_provider.shutdown()
        self.logger_provider.shutdown()


def pipeline(service: str, transport: str, address: str, **resource: object) -> Pipeline:
    span_exporter, log_exporter = exporters(transport, address)
    res = Resource.create({"service.name": service, **resource})
    tracer_provider = TracerProvider(resource=res)
    tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
    logger_provider = LoggerProvider(resource=res)
    logger_provider.add_log_record_processor(BatchLogRecordProcessor(log_exporter))
    logger = logging.getLogger(f"tests.{service}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logger.addHandler(LoggingHandler(level=logging.INFO, logger_provider=logger_provider))
    return Pipeline(tracer_provider, logger_provider, logger)
