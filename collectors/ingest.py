"""What both receivers do with a decoded request: queue it, answer with partial success."""

from __future__ import annotations

from concurrent.futures import Future

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsPartialSuccess,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceResponse,
)

from collectors.decoding import TRACES
from collectors.telemetry import Telemetry
from tracekit.errors import Overloaded
from tracekit.otlp.batches import DecodedBatch
from tracekit.writer import Writer

# How long an export waits for the commit that holds it before it is answered "retry" (the data
# stays queued and is committed; the retry is deduplicated). Without a bound, a stalled disk
# holds every receiver thread, and gRPC refuses further calls without retry advice.
COMMIT_WAIT_S = 5.0

METRICS_UNSUPPORTED = (
    "tracekit collects traces and logs, not metrics: send spans to /v1/traces "
    "(TraceService) and logs to /v1/logs (LogsService), and metrics elsewhere"
)


def submit(writer: Writer, batch: DecodedBatch, source: str,
           telemetry: Telemetry | None = None) -> Future | None:
    """Queue the batch; raises Overloaded or WriterStopped to refuse it. None if empty.
    `telemetry` counts it received, then refused or committed."""
    if telemetry is not None:
        telemetry.received(batch, source)
    if not batch.span_count and not batch.log_count:
        return None
    try:
        committed = writer.submit(batch, source)
    except Overloaded:
        if telemetry is not None:
            telemetry.refused(batch, source)
        raise
    if telemetry is not None:
        committed.add_done_callback(lambda done: _settled(telemetry, done, batch, source))
    return committed


def _settled(telemetry: Telemetry, done: Future, batch: DecodedBatch, source: str) -> None:
    # A cancelled wait still has its data written (tracekit.writer): it counts as committed.
    if done.cancelled() or done.exception() is None:
        telemetry.committed(batch, source)


def response(kind: str, batch: DecodedBatch) -> ExportTraceServiceResponse | ExportLogsServiceResponse:
    """The export response, with partial success when items were rejected."""
    if kind == TRACES:
        answer = ExportTraceServiceResponse()
        if batch.rejected_spans.count:
            answer.partial_success.CopyFrom(ExportTracePartialSuccess(
                rejected_spans=batch.rejected_spans.count,
                error_message=batch.rejected_spans.message("spans")))
        return answer
    answer = ExportLogsServiceResponse()
    if batch.rejected_logs.count:
        answer.partial_success.CopyFrom(ExportLogsPartialSuccess(
            rejected_log_records=batch.rejected_logs.count,
            error_message=batch.rejected_logs.message("log records")))
    return answer
