"""Building OTLP/JSON documents (hex ids, lowerCamelCase keys) from foreign formats."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

SPAN_KIND_UNSPECIFIED, SPAN_KIND_INTERNAL, SPAN_KIND_SERVER = 0, 1, 2
SPAN_KIND_CLIENT, SPAN_KIND_PRODUCER, SPAN_KIND_CONSUMER = 3, 4, 5
STATUS_UNSET, STATUS_OK, STATUS_ERROR = 0, 1, 2


def value(v: Any) -> dict:
    """A Python value as an OTLP/JSON AnyValue."""
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int) and -(2**63) <= v < 2**63:
        return {"intValue": str(v)}
    if isinstance(v, float):
        return {"doubleValue": v}
    if isinstance(v, list):
        return {"arrayValue": {"values": [value(x) for x in v]}}
    if isinstance(v, dict):
        return {"kvlistValue": {"values": key_values(v)}}
    if v is None:
        return {}
    return {"stringValue": str(v)}


def key_values(attributes: dict[str, Any]) -> list[dict]:
    return [{"key": str(k), "value": value(v)} for k, v in attributes.items()]


def hex_id(raw: str | None, hex_digits: int) -> str:
    """A Zipkin/Jaeger hex id, left-padded with zeros to `hex_digits` (64-bit trace ids become
    128-bit ones, as the OpenTelemetry Collector pads them); '' when absent."""
    if not raw:
        return ""
    raw = raw.strip().lower()
    return raw.rjust(hex_digits, "0") if len(raw) <= hex_digits else raw


def span_document(trace_id: str, span_id: str, name: str, kind: int, start_us: int, end_us: int,
                  attributes: dict[str, Any], *, parent: str = "", links: list[dict] | None = None,
                  status: dict | None = None, trace_state: str = "",
                  events: list[dict] | None = None) -> dict:
    """An OTLP/JSON span from a foreign span's fields (times in microseconds, as Zipkin and
    Jaeger give them); the optional members only when they hold something."""
    out = {"traceId": trace_id, "spanId": span_id, "name": name, "kind": kind,
           "startTimeUnixNano": str(start_us * 1000), "endTimeUnixNano": str(end_us * 1000),
           "attributes": key_values(attributes)}
    for member, given in (("parentSpanId", parent), ("links", links), ("status", status),
                          ("traceState", trace_state), ("events", events)):
        if given:
            out[member] = given
    return out


def traces_document(spans: Iterable[tuple[tuple, str | None, dict]]) -> dict:
    """An OTLP/JSON trace export from (resource key, scope name, span) triples; a resource key
    is a tuple of (attribute, value) pairs."""
    grouped: dict[tuple, dict[str | None, list[dict]]] = {}
    for resource, scope, span in spans:
        grouped.setdefault(resource, {}).setdefault(scope, []).append(span)
    return {"resourceSpans": [
        {"resource": {"attributes": key_values(dict(resource))},
         "scopeSpans": [{"scope": {"name": scope} if scope else {}, "spans": items}
                        for scope, items in scopes.items()]}
        for resource, scopes in grouped.items()]}


def logs_document(records: Iterable[tuple[tuple, dict]]) -> dict:
    """An OTLP/JSON logs export from (resource key, log record) pairs."""
    grouped: dict[tuple, list[dict]] = {}
    for resource, record in records:
        grouped.setdefault(resource, []).append(record)
    return {"resourceLogs": [
        {"resource": {"attributes": key_values(dict(resource))},
         "scopeLogs": [{"logRecords": items}]}
        for resource, items in grouped.items()]}
