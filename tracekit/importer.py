"""`tracekit import`: OTLP/JSON, Zipkin v2 and Jaeger JSON trace files and JSON-lines logs
(one document, or one per line), plain or gzip; each converted to OTLP/JSON and stored as an
OTLP export is."""

from __future__ import annotations

import copy
import gzip
import io
import os
import ssl
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from tracekit.errors import DecodeError, TracekitError
from tracekit.formats import detect
from tracekit.otlp.batches import DecodedBatch, concat
from tracekit.otlp.json_decode import decode_logs_json, decode_traces_json
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
    sent_to_collector: bool = False   # then spans/logs were accepted, duplicates not known
    analyzed_flows: int | None = None   # flows the analysis tables wrote after the import
    failed: dict = field(default_factory=dict)      # file -> why nothing of it was imported

    def as_dict(self) -> dict:
        return {
            "files": self.files, "documents": self.documents, "spans": self.spans,
            "logs": self.logs, "duplicate_spans": self.duplicate_spans,
            "rejected": dict(self.rejected), "skipped": dict(self.skipped),
            "sent_to_collector": self.sent_to_collector, "analyzed_flows": self.analyzed_flows,
            "failed": dict(self.failed),
        }


def _open(path: Path) -> tuple[io.BufferedReader, io.BufferedReader]:
    """(raw file for progress, decoded stream); gzip is recognised by its magic bytes."""
    raw = open(path, "rb")  # noqa: SIM115 - closed by the caller
    magic = raw.peek(2)[:2]
    stream = gzip.GzipFile(fileobj=raw) if magic == b"\x1f\x8b" else raw
    return raw, stream


@dataclass(frozen=True)
class Skip:
    """A document or line of a file that is not imported, and why."""

    reason: str


def documents(path: Path, fmt: str | None = None, keep_proxy_spans: bool = False
              ) -> Iterator[tuple[str, dict, int] | Skip]:
    """('traces' or 'logs', an OTLP/JSON document, bytes of the file read so far) for every
    document of the file, or a Skip. The format is `fmt`, else told by the content: JSON lines
    (each line a document, or a log record) or one (possibly pretty-printed) document."""
    raw, stream = _open(path)
    with raw:
        first = stream.readline()
        try:
            parsed = orjson.loads(first) if first.strip() else None
            line_mode = isinstance(parsed, dict | list)
        except orjson.JSONDecodeError:
            line_mode = False
        if not line_mode:
            rest = first + stream.read()
            if not rest.strip():
                yield Skip("the file is empty")
                return
            try:
                parsed = orjson.loads(rest)
            except orjson.JSONDecodeError as exc:
                yield Skip(f"malformed JSON: {exc}")
                return
        fmt = fmt or detect.detect(parsed)
        if fmt is None:
            yield Skip(detect.UNKNOWN)
            return
        lines = detect.LogLines() if fmt == detect.LOGS else None
        number = 1
        while parsed is not None or lines is not None:
            try:
                if lines is not None:
                    lines.add(parsed)
                else:
                    yield (*detect.convert(fmt, parsed, keep_proxy_spans), raw.tell())
            except detect.NotTracesOrLogs as exc:   # its reason alone: it sums over files
                yield Skip(str(exc))
            except DecodeError as exc:
                yield Skip(f"{path.name} line {number}: {exc}" if line_mode else f"{path.name}: {exc}")
            if lines is not None and lines.full():
                yield from ((kind, doc, raw.tell()) for kind, doc in lines.take())
            parsed = None
            if not line_mode:
                break
            for line in stream:
                number += 1
                if line.strip():
                    try:
                        parsed = orjson.loads(line)
                    except orjson.JSONDecodeError as exc:
                        yield Skip(f"{path.name} line {number}: malformed JSON: {exc}")
                        continue
                    break
            if parsed is None:
                break
        if lines is not None:
            yield from ((kind, doc, raw.tell()) for kind, doc in lines.take())


class StoreSink:
    """Writes into a store opened for writing, committing every COMMIT_EVERY_ITEMS items."""

    def __init__(self, store: WritableStore):
        self.store = store
        self.pending: list[DecodedBatch] = []
        self.pending_items = 0

    def add(self, kind: str, document: dict, summary: ImportSummary) -> None:
        batch = _decode(kind, document)
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
    """Sends each document to the running collector that holds the store, as OTLP/JSON."""

    def __init__(self, http_address: str, token: str | None = None, tls_cert: str | None = None):
        self.http_address = http_address
        self.headers = {"Content-Type": "application/json"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self.scheme, self.ssl_context = "http", None
        if tls_cert:
            self.scheme, self.ssl_context = "https", pinned_context(tls_cert)

    def add(self, kind: str, document: dict, summary: ImportSummary) -> None:
        # Decoded here too: the summary counts what the collector will accept, and a document
        # that does not decode is skipped with its reason, as when importing into the file.
        batch = _decode(kind, copy.deepcopy(document))
        for reason, n in (batch.rejected_spans.reasons + batch.rejected_logs.reasons).items():
            summary.rejected[reason] += n
        http = urllib.request.Request(
            f"{self.scheme}://{self.http_address}/v1/{kind}", data=orjson.dumps(document),
            method="POST", headers=self.headers)
        for attempt in range(30):
            try:
                with urllib.request.urlopen(http, timeout=60, context=self.ssl_context):
                    break
            except urllib.error.HTTPError as exc:
                if exc.code not in (429, 503) or attempt == 29:
                    message = exc.read()[:300].decode(errors="replace")
                    raise TracekitError(f"the running collector refused the import: HTTP {exc.code} "
                                        f"{message}") from None
                time.sleep(float(exc.headers.get("Retry-After", "1")))  # the collector asks us to wait
            except (urllib.error.URLError, OSError) as exc:
                raise TracekitError(f"cannot reach the running collector at {self.http_address}: {exc}") from None
        summary.sent_to_collector = True
        summary.spans += batch.span_count
        summary.logs += batch.log_count

    def flush(self, summary: ImportSummary) -> None:
        """Nothing to do: the collector has acknowledged (committed) every document already."""


def pinned_context(cert_file: str) -> ssl.SSLContext:
    """A client context that trusts exactly the collector's own certificate (read from the
    file its endpoint file names), whatever CA issued it and whichever address it was bound
    to: the certificate itself is the trust anchor, so the host name is not checked."""
    context = ssl.create_default_context(cafile=cert_file)
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    context.check_hostname = False
    return context


def _decode(kind: str, document: dict) -> DecodedBatch:
    return decode_traces_json(document) if kind == "traces" else decode_logs_json(document)


def import_files(paths: list[Path], sink: StoreSink | CollectorSink,
                 on_progress: Callable[[int], None] | None = None, fmt: str | None = None,
                 keep_proxy_spans: bool = False) -> ImportSummary:
    """Import every file through `sink`; `on_progress` gets the bytes read so far. A file of
    which nothing could be imported is named in `summary.failed` with the reason."""
    for path in paths:
        if not path.is_file():
            raise TracekitError(f"{path}: no such file")
    summary = ImportSummary()
    done_bytes = 0
    for path in paths:
        summary.files += 1
        imported, reasons = 0, []
        for item in documents(path, fmt, keep_proxy_spans):
            if isinstance(item, Skip):
                summary.skipped[item.reason] += 1
                reasons.append(item.reason)
                continue
            kind, document, position = item
            summary.documents += 1
            try:
                sink.add(kind, document, summary)
            except DecodeError as exc:
                reason = f"{path.name}: {exc}"
                summary.skipped[reason] += 1
                reasons.append(reason)
                continue
            imported += 1
            if on_progress is not None:
                on_progress(done_bytes + position)
        if not imported:
            why = reasons[0] if reasons else "it holds no traces or logs"
            summary.failed[str(path)] = why.removeprefix(f"{path.name}: ")
        done_bytes += os.path.getsize(path)
    sink.flush(summary)
    return summary


def total_bytes(paths: list[Path]) -> int:
    return sum(os.path.getsize(p) for p in paths if p.is_file())
