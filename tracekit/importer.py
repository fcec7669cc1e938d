"""`tracekit import`: OTLP/JSON files (one document, or one request per line), plain or gzip."""

from __future__ import annotations

import gzip
import io
import os
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tracekit.errors import DecodeError, TracekitError
from tracekit.otlp import json as otlp_json
from tracekit.otlp.batches import DecodedBatch, concat
from tracekit.otlp.decode import decode_logs, decode_traces
from tracekit.writable import WritableStore

COMMIT_EVERY_ITEMS = 50_000


@dataclass
class ImportSummary:
    files: int = 0
    documents: int = 0
    spans: int = 0
    logs: int = 0
    duplicate_spans: int = 0
    rejected: Counter = field(default_factory=Counter)    # reason -> items
    skipped: Counter = field(default_factory=Counter)     # reason -> documents

    def as_dict(self) -> dict:
        return {
            "files": self.files, "documents": self.documents, "spans": self.spans,
            "logs": self.logs, "duplicate_spans": self.duplicate_spans,
            "rejected": dict(self.rejected), "skipped": dict(self.skipped),
        }


def _open(path: Path) -> tuple[io.BufferedReader, io.BufferedReader]:
    """(raw file for progress, decoded stream); gzip is recognised by its magic bytes."""
    raw = open(path, "rb")  # noqa: SIM115 - closed by the caller
    magic = raw.peek(2)[:2]
    stream = gzip.GzipFile(fileobj=raw) if magic == b"\x1f\x8b" else raw
    return raw, stream


def documents(path: Path, summary: ImportSummary) -> Iterator[tuple[dict, int]]:
    """(document, bytes of the file read so far) for every OTLP/JSON document in the file:
    JSON lines, or one (possibly pretty-printed) document."""
    raw, stream = _open(path)
    with raw:
        first = stream.readline()
        try:
            doc = orjson.loads(first) if first.strip() else None
            line_mode = isinstance(doc, dict)
        except orjson.JSONDecodeError:
            line_mode = False
        if not line_mode:
            try:
                yield otlp_json.parse_document(first + stream.read()), raw.tell()
            except DecodeError as exc:
                summary.skipped[f"{path.name}: {exc}"] += 1
            return
        yield doc, raw.tell()
        for number, line in enumerate(stream, start=2):
            if not line.strip():
                continue
            try:
                yield otlp_json.parse_document(line), raw.tell()
            except DecodeError as exc:
                summary.skipped[f"{path.name} line {number}: {exc}"] += 1


def request_of(document: dict) -> ExportTraceServiceRequest | ExportLogsServiceRequest | str:
    """The document as an OTLP export request, or why it was skipped."""
    keys = set(document)
    if keys & {"resourceSpans", "resource_spans"}:
        return otlp_json.traces_request(document)
    if keys & {"resourceLogs", "resource_logs"}:
        return otlp_json.logs_request(document)
    if keys & {"resourceMetrics", "resource_metrics"}:
        return "metrics documents (tracekit stores traces and logs)"
    return "documents that are not OTLP traces or logs"


class StoreSink:
    """Writes into a store opened for writing, committing every COMMIT_EVERY_ITEMS items."""

    def __init__(self, store: WritableStore):
        self.store = store
        self.pending: list[DecodedBatch] = []
        self.pending_items = 0

    def add(self, request: Any, summary: ImportSummary) -> None:
        batch = decode_traces(request) if isinstance(request, ExportTraceServiceRequest) else decode_logs(request)
        for reason, n in (batch.rejected_spans.reasons + batch.rejected_logs.reasons).items():
            summary.rejected[reason] += n
        if batch.span_count or batch.log_count:
            self.pending.append(batch)
            self.pending_items += batch.span_count + batch.log_count
        if self.pending_items >= COMMIT_EVERY_ITEMS:
            self.flush(summary)

    def flush(self, summary: ImportSummary) -> None:
        if self.pending:
            result = self.store.append(concat(self.pending), "import")
            summary.spans += result.spans
            summary.logs += result.logs
            summary.duplicate_spans += result.duplicates
        self.pending, self.pending_items = [], 0


class CollectorSink:
    """Sends each request to the running collector that holds the store, over OTLP/HTTP."""

    def __init__(self, http_address: str):
        self.http_address = http_address

    def add(self, request: Any, summary: ImportSummary) -> None:
        traces = isinstance(request, ExportTraceServiceRequest)
        items = _count_items(request, traces)
        path, response_type = (("/v1/traces", ExportTraceServiceResponse) if traces
                               else ("/v1/logs", ExportLogsServiceResponse))
        http = urllib.request.Request(
            f"http://{self.http_address}{path}", data=request.SerializeToString(), method="POST",
            headers={"Content-Type": "application/x-protobuf"})
        for attempt in range(30):
            try:
                with urllib.request.urlopen(http, timeout=60) as answer:
                    response = response_type.FromString(answer.read())
                break
            except urllib.error.HTTPError as exc:
                if exc.code not in (429, 503) or attempt == 29:
                    raise TracekitError(f"the running collector refused the import: HTTP {exc.code} "
                                        f"{exc.read()[:200]!r}") from None
                time.sleep(float(exc.headers.get("Retry-After", "1")))  # the collector asks us to wait
            except (urllib.error.URLError, OSError) as exc:
                raise TracekitError(f"cannot reach the running collector at {self.http_address}: {exc}") from None
        partial = response.partial_success
        rejected = partial.rejected_spans if traces else partial.rejected_log_records
        if rejected:
            summary.rejected[partial.error_message or "rejected by the collector"] += rejected
        if traces:
            summary.spans += items - rejected
        else:
            summary.logs += items - rejected

    def flush(self, summary: ImportSummary) -> None:
        """Nothing to do: the collector has acknowledged (committed) every request already."""


def _count_items(request: Any, traces: bool) -> int:
    if traces:
        return sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
    return sum(len(sl.log_records) for rl in request.resource_logs for sl in rl.scope_logs)


def import_files(paths: list[Path], sink: StoreSink | CollectorSink,
                 on_progress: Callable[[int], None] | None = None) -> ImportSummary:
    """Import every file through `sink`; `on_progress` gets the bytes read so far."""
    for path in paths:
        if not path.is_file():
            raise TracekitError(f"{path}: no such file")
    summary = ImportSummary()
    done_bytes = 0
    for path in paths:
        summary.files += 1
        for document, position in documents(path, summary):
            summary.documents += 1
            try:
                request = request_of(document)
            except DecodeError as exc:
                summary.skipped[f"{path.name}: {exc}"] += 1
                continue
            if isinstance(request, str):
                summary.skipped[request] += 1
                continue
            sink.add(request, summary)
            if on_progress is not None:
                on_progress(done_bytes + position)
        done_bytes += os.path.getsize(path)
    sink.flush(summary)
    return summary


def total_bytes(paths: list[Path]) -> int:
    return sum(os.path.getsize(p) for p in paths if p.is_file())
