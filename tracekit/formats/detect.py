"""Which format an imported file is in, from its content, and its documents as OTLP/JSON."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tracekit.errors import DecodeError
from tracekit.formats import jaeger, json_logs, zipkin
from tracekit.formats.otlp_document import logs_document

OTLP, ZIPKIN, JAEGER, LOGS = "otlp", "zipkin", "jaeger", "logs"
FORMATS = (OTLP, ZIPKIN, JAEGER, LOGS)
NAMES = {OTLP: "OTLP/JSON", ZIPKIN: "Zipkin v2 JSON", JAEGER: "Jaeger JSON", LOGS: "JSON-lines logs"}
_OTLP_KEYS = {"resourceSpans", "resource_spans", "resourceLogs", "resource_logs",
              "resourceMetrics", "resource_metrics"}
UNKNOWN = ("not a format tracekit imports (OTLP/JSON, Zipkin v2 JSON, Jaeger JSON, JSON-lines "
           "logs); if it is one of them, say which with --format")
LOG_LINES_PER_DOCUMENT = 5000


class NotTracesOrLogs(DecodeError):
    """An OTLP/JSON document of another signal (metrics), or of none."""


def detect(document: Any) -> str | None:
    """The format of a file whose first document (or line) is `document`, or None."""
    if isinstance(document, dict) and document.keys() & _OTLP_KEYS:
        return OTLP
    if zipkin.looks_like_zipkin(document):
        return ZIPKIN
    if jaeger.traces_of(document) is not None:
        return JAEGER
    if json_logs.looks_like_log_record(document):
        return LOGS
    return None


def otlp_kind(document: dict) -> str:
    """'traces' or 'logs', or why an OTLP/JSON document is skipped."""
    keys = set(document)
    if keys & {"resourceSpans", "resource_spans"}:
        return "traces"
    if keys & {"resourceLogs", "resource_logs"}:
        return "logs"
    if keys & {"resourceMetrics", "resource_metrics"}:
        return "metrics documents (tracekit stores traces and logs)"
    return "documents that are not OTLP traces or logs"


def convert(fmt: str, document: Any, keep_proxy_spans: bool = False) -> tuple[str, dict]:
    """('traces' or 'logs', an OTLP/JSON document) of one document of a trace format; raises
    DecodeError when it is not one."""
    if fmt == OTLP:
        if not isinstance(document, dict):
            raise DecodeError("an OTLP/JSON document must be a JSON object")
        kind = otlp_kind(document)
        if kind not in ("traces", "logs"):
            raise NotTracesOrLogs(kind)
        return kind, document
    if fmt == ZIPKIN:
        return "traces", zipkin.to_otlp(zipkin.spans_from_json(document), keep_proxy_spans)
    if fmt == JAEGER:
        traces = jaeger.traces_of(document)
        if traces is None:
            raise DecodeError('not Jaeger JSON: expected {"data": [{"traceID", "spans", '
                              '"processes"}, ...]}')
        return "traces", jaeger.to_otlp(traces)
    raise ValueError(f"no document conversion for {fmt}")


class LogLines:
    """JSON-lines log records gathered into OTLP/JSON logs documents."""

    def __init__(self) -> None:
        self.records: list[tuple[tuple, dict]] = []

    def add(self, record: Any) -> None:
        self.records.append(json_logs.to_record(record))

    def full(self) -> bool:
        return len(self.records) >= LOG_LINES_PER_DOCUMENT

    def take(self) -> Iterator[tuple[str, dict]]:
        if self.records:
            records, self.records = self.records, []
            yield "logs", logs_document(records)
