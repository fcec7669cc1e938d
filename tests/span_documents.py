"""OTLP/JSON export requests made from short span descriptions, for tests that import them."""

from __future__ import annotations

import json
from pathlib import Path

T0 = 1_796_000_000_000_000_000     # 2026-11-30T...: a fixed start for made-up spans


def when(seconds: int) -> str:
    """T0 plus whole `seconds`, as the CLI's --from/--to read it (UTC)."""
    from datetime import datetime, timezone

    return datetime.fromtimestamp(T0 // 10**9 + seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


def span(trace: str, span_id: str, name: str, *, parent: str | None = None, kind: int = 2,
         start_ms: float = 0, duration_ms: float = 10, attributes: dict | None = None,
         links: list[tuple[str, str]] = (), error: bool = False) -> dict:
    """One OTLP/JSON span; ids as given (hex), times in ms after T0."""
    start = T0 + int(start_ms * 1e6)
    out = {"traceId": trace, "spanId": span_id, "name": name, "kind": kind,
           "startTimeUnixNano": str(start), "endTimeUnixNano": str(start + int(duration_ms * 1e6)),
           "attributes": [{"key": k, "value": {"stringValue": str(v)}}
                          for k, v in (attributes or {}).items()],
           "links": [{"traceId": t, "spanId": s} for t, s in links]}
    if parent:
        out["parentSpanId"] = parent
    if error:
        out["status"] = {"code": 2, "message": "failed"}
    return out


def request(service: str, spans: list[dict], resource: dict | None = None) -> dict:
    attributes = {"service.name": service, **(resource or {})}
    return {"resourceSpans": [{
        "resource": {"attributes": [{"key": k, "value": {"stringValue": str(v)}}
                                    for k, v in attributes.items()]},
        "scopeSpans": [{"scope": {"name": "test"}, "spans": spans}]}]}


def log(trace: str | None, span_id: str | None, body: str, *, severity: int = 9,
        at_ms: float = 0) -> dict:
    """One OTLP/JSON log record (severity as the log data model's SeverityNumber)."""
    out = {"timeUnixNano": str(T0 + int(at_ms * 1e6)), "severityNumber": severity,
           "body": {"stringValue": body}}
    if trace:
        out["traceId"], out["spanId"] = trace, span_id
    return out


def log_request(service: str, records: list[dict]) -> dict:
    return {"resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeLogs": [{"scope": {"name": "test"}, "logRecords": records}]}]}


def write(path: Path, *requests: dict) -> Path:
    """The requests as one file, a request per line (as the Collector's file exporter)."""
    path.write_text("".join(json.dumps(r) + "\n" for r in requests))
    return path
