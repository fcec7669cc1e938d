"""`tracekit import`: OTLP/JSON files (one document, or one request per line), plain or gzip."""

from __future__ import annotations

import gzip
import io
import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson

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


def decode_document(document: dict) -> DecodedBatch | str:
    """The document's spans or logs, or why it was skipped."""
    keys = set(document)
    if keys & {"resourceSpans", "resource_spans"}:
        return decode_traces(otlp_json.traces_request(document))
    if keys & {"resourceLogs", "resource_logs"}:
        return decode_logs(otlp_json.logs_request(document))
    if keys & {"resourceMetrics", "resource_metrics"}:
        return "metrics documents (tracekit stores traces and logs)"
    return "documents that are not OTLP traces or logs"


def import_files(paths: list[Path], store: WritableStore,
                 on_progress: Callable[[int], None] | None = None) -> ImportSummary:
    """Import every file into the store, committing every COMMIT_EVERY_ITEMS items.

    `on_progress` gets the bytes read so far across all files.
    """
    summary = ImportSummary()
    pending: list[DecodedBatch] = []
    pending_items = 0

    def flush() -> None:
        nonlocal pending, pending_items
        if pending:
            result = store.append(concat(pending), "import")
            summary.spans += result.spans
            summary.logs += result.logs
            summary.duplicate_spans += result.duplicates
        pending, pending_items = [], 0

    done_bytes = 0
    for path in paths:
        if not path.is_file():
            raise TracekitError(f"{path}: no such file")
    for path in paths:
        summary.files += 1
        for document, position in documents(path, summary):
            summary.documents += 1
            try:
                decoded = decode_document(document)
            except DecodeError as exc:
                summary.skipped[f"{path.name}: {exc}"] += 1
                continue
            if isinstance(decoded, str):
                summary.skipped[decoded] += 1
                continue
            for reason, n in (decoded.rejected_spans.reasons + decoded.rejected_logs.reasons).items():
                summary.rejected[reason] += n
            if decoded.span_count or decoded.log_count:
                pending.append(decoded)
                pending_items += decoded.span_count + decoded.log_count
            if pending_items >= COMMIT_EVERY_ITEMS:
                flush()
            if on_progress is not None:
                on_progress(done_bytes + position)
        done_bytes += os.path.getsize(path)
    flush()
    return summary


def total_bytes(paths: list[Path]) -> int:
    return sum(os.path.getsize(p) for p in paths if p.is_file())
