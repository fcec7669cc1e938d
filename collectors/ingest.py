"""What both receivers do with a request: decode, hand to the writer, report partial success."""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsPartialSuccess,
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tracekit.otlp.batches import DecodedBatch
from tracekit.otlp.decode import decode_logs, decode_traces
from tracekit.writer import Writer

METRICS_UNSUPPORTED = (
    "tracekit collects traces and logs, not metrics: send spans to /v1/traces "
    "(TraceService) and logs to /v1/logs (LogsService), and metrics elsewhere"
)


@dataclass
class Accepted:
    """A request whose valid items are queued; `committed` resolves after their commit."""

    committed: Future | None
    response: ExportTraceServiceResponse | ExportLogsServiceResponse


def accept_traces(writer: Writer, request: ExportTraceServiceRequest, source: str) -> Accepted:
    """Decode and queue a trace export; raises Overloaded or WriterStopped to refuse it."""
    batch = decode_traces(request)
    response = ExportTraceServiceResponse()
    if batch.rejected_spans.count:
        response.partial_success.CopyFrom(ExportTracePartialSuccess(
            rejected_spans=batch.rejected_spans.count,
            error_message=batch.rejected_spans.message("spans"),
        ))
    return Accepted(_submit(writer, batch, source), response)


def accept_logs(writer: Writer, request: ExportLogsServiceRequest, source: str) -> Accepted:
    """Decode and queue a logs export; raises Overloaded or WriterStopped to refuse it."""
    batch = decode_logs(request)
    response = ExportLogsServiceResponse()
    if batch.rejected_logs.count:
        response.partial_success.CopyFrom(ExportLogsPartialSuccess(
            rejected_log_records=batch.rejected_logs.count,
            error_message=batch.rejected_logs.message("log records"),
        ))
    return Accepted(_submit(writer, batch, source), response)


def _submit(writer: Writer, batch: DecodedBatch, source: str) -> Future | None:
    if not batch.span_count and not batch.log_count:
        return None
    return writer.submit(batch, source)
