"""OTLP/gRPC: TraceService and LogsService; MetricsService answers UNIMPLEMENTED."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

from collectors.ingest import METRICS_UNSUPPORTED, accept_logs, accept_traces
from tracekit.errors import Overloaded, WriterStopped
from tracekit.writer import Writer

log = logging.getLogger(__name__)


def _export(accept, writer: Writer, request, context: grpc.ServicerContext):
    try:
        accepted = accept(writer, request, "otlp-grpc")
    except Overloaded as exc:
        # UNAVAILABLE is retryable for every OTLP exporter, with its own backoff.
        context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
    except WriterStopped as exc:
        context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
    if accepted.committed is not None:
        try:
            accepted.committed.result()
        except Exception as exc:  # the commit failed: nothing of this request is stored
            log.error("commit failed: %s", exc)
            context.abort(grpc.StatusCode.UNAVAILABLE, f"the store could not commit: {exc}")
    return accepted.response


class TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, writer: Writer):
        self.writer = writer

    def Export(self, request, context):  # noqa: N802 - gRPC method name
        return _export(accept_traces, self.writer, request, context)


class LogsService(logs_service_pb2_grpc.LogsServiceServicer):
    def __init__(self, writer: Writer):
        self.writer = writer

    def Export(self, request, context):  # noqa: N802
        return _export(accept_logs, self.writer, request, context)


class MetricsService(metrics_service_pb2_grpc.MetricsServiceServicer):
    def Export(self, request, context):  # noqa: N802
        context.abort(grpc.StatusCode.UNIMPLEMENTED, METRICS_UNSUPPORTED)


def build_grpc_server(writer: Writer, address: str, max_message_bytes: int) -> tuple[grpc.Server, int]:
    """A started-ready gRPC server bound to `address`; returns it and the bound port."""
    server = grpc.server(
        ThreadPoolExecutor(max_workers=16, thread_name_prefix="otlp-grpc"),
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.so_reuseport", 0),
        ],
    )
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(TraceService(writer), server)
    logs_service_pb2_grpc.add_LogsServiceServicer_to_server(LogsService(writer), server)
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(MetricsService(), server)
    port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot listen for OTLP/gRPC on {address}: address in use or not local")
    return server, port
