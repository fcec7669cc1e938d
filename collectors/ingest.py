"""The one export path behind every receiver (OTLP/gRPC, OTLP/HTTP, Zipkin): decode a request,
queue its rows for the writer, wait for the commit that holds them, and say what to answer
(partial success, or a refusal). Each receiver is an adapter from its transport to this path
and back (docs/design/collector.md)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Generator
from concurrent.futures import Future
from typing import Any

from google.rpc import code_pb2

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsPartialSuccess,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceResponse,
)

from collectors.decoding import TRACES, Refusal
from collectors.telemetry import Telemetry
from tracekit.errors import Overloaded, WriterStopped
from tracekit.otlp.batches import DecodedBatch
from tracekit.writer import Writer

log = logging.getLogger(__name__)

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


def _export(writer: Writer, decode: Callable[[], Future], source: str,
            telemetry: Telemetry | None) -> Generator[tuple[Future, float | None], Any, DecodedBatch | Refusal]:
    """The export path every receiver shares, written once for both ways of waiting: it
    yields each future it waits for (with how long it may wait) and is sent its result, or
    thrown its exception. Decode a request (`decode` starts it) and queue its rows, then wait
    for the commit that holds them: the batch once it is durable, or why it was refused
    (retryably, with `retry_after_s`, when the writer is behind, stopping or slow to commit).
    `telemetry` counts it as `submit` does."""
    try:
        with writer.incoming():
            try:
                batch = yield decode(), None
            except Exception as exc:  # the worker died mid-request: the client may retry
                log.error("decoding failed: %s", exc)
                return Refusal(503, code_pb2.UNAVAILABLE, "decoding failed; retry", 1)
            if isinstance(batch, Refusal):
                return batch
            committed = submit(writer, batch, source, telemetry)
        if committed is not None:
            try:
                # the commit goes on (and the retry is deduplicated) if we stop waiting
                yield committed, COMMIT_WAIT_S
            except TimeoutError:
                return Refusal(503, code_pb2.UNAVAILABLE,
                               f"the store has not committed this export within {COMMIT_WAIT_S:g} s; "
                               "retry later", 1)
    except Overloaded as exc:
        return Refusal(503, code_pb2.UNAVAILABLE, str(exc), exc.retry_after_s)
    except WriterStopped as exc:
        return Refusal(503, code_pb2.UNAVAILABLE, str(exc), 1)
    except Exception as exc:  # the commit failed; the client may retry
        log.error("%s export failed: %s", source, exc)
        return Refusal(503, code_pb2.UNAVAILABLE, f"the store could not commit: {exc}", 1)
    return batch


def _resume(steps: Generator, result: Any = None, error: BaseException | None = None) -> Any:
    """Send what a wait gave (or throw what it raised) into `_export`: the next (future,
    timeout) to wait for, or the answer."""
    try:
        return steps.throw(error) if error is not None else steps.send(result)
    except StopIteration as done:
        return done.value


async def decode_and_commit(writer: Writer, decode: Callable[[], Future], source: str,
                            telemetry: Telemetry | None = None) -> DecodedBatch | Refusal:
    """The export path (`_export`) on an event loop: OTLP/HTTP and Zipkin."""
    steps = _export(writer, decode, source, telemetry)
    waited = _resume(steps)
    while isinstance(waited, tuple):
        future, timeout_s = waited
        waiting = asyncio.wrap_future(future)
        if timeout_s is not None:   # shield: a timeout stops the wait, not the commit
            waiting = asyncio.wait_for(asyncio.shield(waiting), timeout_s)
        try:
            result = await waiting
        except BaseException as exc:
            waited = _resume(steps, error=exc)
        else:
            waited = _resume(steps, result)
    return waited


def decode_and_commit_blocking(writer: Writer, decode: Callable[[], Future], source: str,
                               telemetry: Telemetry | None = None) -> DecodedBatch | Refusal:
    """The export path (`_export`) in a thread of its own: OTLP/gRPC."""
    steps = _export(writer, decode, source, telemetry)
    waited = _resume(steps)
    while isinstance(waited, tuple):
        future, timeout_s = waited
        try:
            result = future.result(timeout_s)
        except BaseException as exc:
            waited = _resume(steps, error=exc)
        else:
            waited = _resume(steps, result)
    return waited


def retry_after_header(refusal: Refusal) -> dict[str, str] | None:
    """An HTTP answer's Retry-After for a refusal, in whole seconds (at least one)."""
    if refusal.retry_after_s is None:
        return None
    return {"Retry-After": str(max(1, round(refusal.retry_after_s)))}
