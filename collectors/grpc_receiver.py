"""OTLP/gRPC: TraceService and LogsService; MetricsService answers UNIMPLEMENTED.

Handlers take the raw request bytes and hand them to the export path every receiver shares
(`collectors.ingest`), so a malformed message gets INVALID_ARGUMENT with a reason rather than
gRPC's generic failure, and a refusal UNAVAILABLE with a RetryInfo.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import grpc
from google.protobuf import any_pb2
from google.protobuf.duration_pb2 import Duration
from google.rpc import code_pb2, status_pb2
from google.rpc.error_details_pb2 import RetryInfo

from collectors.admission import Admission
from collectors.auth import BearerTokenInterceptor
from collectors.decode_pool import DecodePool
from collectors.decoding import GRPC, LOGS, PROTOBUF, TRACES, Refusal
from collectors.ingest import METRICS_UNSUPPORTED, decode_and_commit_blocking, response
from collectors.telemetry import Telemetry
from tracekit.errors import Overloaded
from tracekit.threads import name_os_thread
from tracekit.writer import Writer

TRACE_SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
LOGS_SERVICE = "opentelemetry.proto.collector.logs.v1.LogsService"
METRICS_SERVICE = "opentelemetry.proto.collector.metrics.v1.MetricsService"
MAX_CONCURRENT_CALLS = 64


def _refuse(context: grpc.ServicerContext, code: int, message: str,
            retry_after_s: float | None) -> None:
    """Abort with the refusal's status; a retryable one (UNAVAILABLE) carries a RetryInfo
    saying when, in the status details and under the key the Python exporter reads."""
    if retry_after_s is not None:
        delay = Duration()
        delay.FromNanoseconds(int(retry_after_s * 1e9))
        retry = RetryInfo(retry_delay=delay)
        details = any_pb2.Any()
        details.Pack(retry)
        status = status_pb2.Status(code=code, message=message, details=[details])
        context.set_trailing_metadata((("grpc-status-details-bin", status.SerializeToString()),
                                       ("google.rpc.retryinfo-bin", retry.SerializeToString())))
    context.abort(_status_code(code), message)


def _export_handler(writer: Writer, decoders: DecodePool, kind: str,
                    admission: Admission | None,
                    telemetry: Telemetry | None = None) -> grpc.RpcMethodHandler:
    def export(data: bytes, context: grpc.ServicerContext) -> bytes:
        if admission is not None:
            try:
                admission.check()       # before decoding: a refusal costs nothing
            except Overloaded as exc:
                _refuse(context, code_pb2.UNAVAILABLE, str(exc), exc.retry_after_s)
        # The message arrives as sent (gRPC's decompression is off): the decode worker
        # inflates it within the size limit.
        batch = decode_and_commit_blocking(
            writer, lambda: decoders.submit(kind, PROTOBUF, GRPC, data), "otlp-grpc", telemetry)
        if isinstance(batch, Refusal):
            _refuse(context, batch.rpc_code, batch.message, batch.retry_after_s)
        return response(kind, batch).SerializeToString()

    return grpc.unary_unary_rpc_method_handler(export)


def _status_code(rpc_code: int) -> grpc.StatusCode:
    return next(code for code in grpc.StatusCode if code.value[0] == rpc_code)


def _metrics_handler() -> grpc.RpcMethodHandler:
    def export(data: bytes, context: grpc.ServicerContext) -> bytes:
        context.abort(grpc.StatusCode.UNIMPLEMENTED, METRICS_UNSUPPORTED)

    return grpc.unary_unary_rpc_method_handler(export)


def build_grpc_server(writer: Writer, decoders: DecodePool, address: str,
                      max_message_bytes: int, auth_token: str | None = None,
                      credentials: grpc.ServerCredentials | None = None,
                      admission: Admission | None = None,
                      telemetry: Telemetry | None = None) -> tuple[grpc.Server, int]:
    """A gRPC server bound to `address` (not yet started) and its bound port; with
    `credentials`, TLS only (a plaintext client fails its handshake)."""
    server = grpc.server(
        ThreadPoolExecutor(max_workers=16, thread_name_prefix="otlp-grpc", initializer=name_os_thread),
        interceptors=[BearerTokenInterceptor(auth_token)] if auth_token else [],
        # Calls beyond this are refused at once (RESOURCE_EXHAUSTED, retried by exporters)
        # rather than queued inside gRPC with their messages in memory.
        maximum_concurrent_rpcs=MAX_CONCURRENT_CALLS,
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            # gRPC would inflate a compressed message whole before the limit applies (a gzip
            # bomb costs the limit in memory); the decode worker inflates it, counting first.
            ("grpc.per_message_decompression", 0),
            ("grpc.so_reuseport", 0),
        ],
    )
    server.add_generic_rpc_handlers([
        grpc.method_handlers_generic_handler(TRACE_SERVICE, {"Export": _export_handler(writer, decoders, TRACES, admission, telemetry)}),
        grpc.method_handlers_generic_handler(LOGS_SERVICE, {"Export": _export_handler(writer, decoders, LOGS, admission, telemetry)}),
        grpc.method_handlers_generic_handler(METRICS_SERVICE, {"Export": _metrics_handler()}),
    ])
    try:
        port = (server.add_secure_port(address, credentials) if credentials is not None
                else server.add_insecure_port(address))
    except RuntimeError as exc:
        raise OSError(f"cannot listen for OTLP/gRPC on {address}: {exc}") from None
    if port == 0:
        raise OSError(f"cannot listen for OTLP/gRPC on {address}: address in use or not local")
    return server, port
