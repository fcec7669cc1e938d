"""Jaeger's JSON (what the Jaeger UI downloads, and Jaeger's `/api/traces` answers) → an
OTLP/JSON trace export, mapped as the OpenTelemetry Collector's Jaeger translator maps Jaeger
spans: references CHILD_OF → parent (further ones, and those into another trace, → links),
FOLLOWS_FROM → links, process tags → resource attributes, logs → events, `span.kind`,
`error` and `otel.status_code` tags → kind and status.
"""

from __future__ import annotations

import base64
from typing import Any

from tracekit.errors import DecodeError
from tracekit.formats.otlp_document import (
    SPAN_KIND_CLIENT, SPAN_KIND_CONSUMER, SPAN_KIND_INTERNAL, SPAN_KIND_PRODUCER, SPAN_KIND_SERVER,
    SPAN_KIND_UNSPECIFIED, STATUS_ERROR, STATUS_OK, STATUS_UNSET, hex_id, key_values, span_document,
    traces_document,
)

_KINDS = {"client": SPAN_KIND_CLIENT, "server": SPAN_KIND_SERVER, "producer": SPAN_KIND_PRODUCER,
          "consumer": SPAN_KIND_CONSUMER, "internal": SPAN_KIND_INTERNAL}
_STATUS = {"OK": STATUS_OK, "ERROR": STATUS_ERROR, "UNSET": STATUS_UNSET,
           "STATUS_CODE_OK": STATUS_OK, "STATUS_CODE_ERROR": STATUS_ERROR}
# Tags Jaeger's own OTLP translation adds, which say nothing about the span.
_DROPPED_TAGS = {"internal.span.format"}


def traces_of(document: Any) -> list[dict] | None:
    """The traces of a Jaeger JSON document ({"data": [trace, ...]}, one trace, or a list of
    traces), or None if it is not one."""
    if isinstance(document, dict) and isinstance(document.get("data"), list):
        traces = document["data"]
    elif isinstance(document, dict):
        traces = [document]
    elif isinstance(document, list):
        traces = document
    else:
        return None
    if traces and all(isinstance(t, dict) and isinstance(t.get("spans"), list) and "traceID" in t
                      for t in traces):
        return traces
    if isinstance(document, dict) and document.get("data") == [] and "errors" in document:
        return []      # an /api/traces answer that found nothing
    return None


def _value(tag: dict) -> Any:
    kind, value = str(tag.get("type", "string")).lower(), tag.get("value")
    if kind == "bool":
        return value if isinstance(value, bool) else str(value).lower() == "true"
    if kind == "int64":
        return int(value)
    if kind == "float64":
        return float(value)
    if kind == "binary":   # base64 in Jaeger's JSON; kept as the text the store shows bytes as
        return value if isinstance(value, str) else base64.b64encode(bytes(value)).decode()
    return value if isinstance(value, str) else str(value)


def _tags(tags: Any) -> dict[str, Any]:
    if not isinstance(tags, list):
        return {}
    return {str(t["key"]): _value(t) for t in tags if isinstance(t, dict) and "key" in t}


def to_otlp(traces: list[dict]) -> dict:
    """An OTLP/JSON trace export document of Jaeger traces (from `traces_of`)."""
    try:
        return traces_document(span for trace in traces for span in _spans(trace))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise DecodeError(f"not a valid Jaeger JSON trace: {exc!r}") from None


def _spans(trace: dict):
    processes = trace.get("processes") or {}
    for span in trace["spans"]:
        process = span.get("process") or processes.get(span.get("processID")) or {}
        resource = {"service.name": str(process.get("serviceName") or "")}
        resource.update(_tags(process.get("tags")))
        tags = _tags(span.get("tags"))
        for key in _DROPPED_TAGS:
            tags.pop(key, None)
        kind = _KINDS.get(str(tags.pop("span.kind", "")).lower(), SPAN_KIND_UNSPECIFIED)
        status: dict[str, Any] = {}
        if "otel.status_code" in tags:
            status["code"] = _STATUS.get(str(tags.pop("otel.status_code")).upper(), STATUS_UNSET)
            if "otel.status_description" in tags:
                status["message"] = str(tags.pop("otel.status_description"))
        if tags.get("error") in (True, "true"):
            tags.pop("error")
            status["code"] = STATUS_ERROR
        scope = tags.pop("otel.scope.name", None) or tags.pop("otel.library.name", None)
        tags.pop("otel.scope.version", None), tags.pop("otel.library.version", None)
        trace_state = tags.pop("w3c.tracestate", "")

        trace_id = hex_id(span.get("traceID") or trace.get("traceID"), 32)
        parent, links = "", []
        for ref in span.get("references") or []:
            ref_trace = hex_id(ref.get("traceID"), 32) or trace_id
            ref_span = hex_id(ref.get("spanID"), 16)
            if (not parent and str(ref.get("refType", "CHILD_OF")).upper() == "CHILD_OF"
                    and ref_trace == trace_id):
                parent = ref_span
            else:
                links.append({"traceId": ref_trace, "spanId": ref_span, "attributes": key_values(
                    {"opentracing.ref_type": str(ref.get("refType", "")).lower()})})
        if not parent and span.get("parentSpanID") and span["parentSpanID"] != "0":
            parent = hex_id(span["parentSpanID"], 16)   # Jaeger's older JSON
        start_us = int(span.get("startTime") or 0)
        events = [_event(entry) for entry in span.get("logs") or [] if isinstance(entry, dict)]
        yield tuple(resource.items()), scope, span_document(
            trace_id, hex_id(span.get("spanID"), 16), str(span.get("operationName") or ""), kind,
            start_us, start_us + int(span.get("duration") or 0), tags, parent=parent,
            links=links, status=status, trace_state=trace_state, events=events)


def _event(entry: dict) -> dict:
    fields = _tags(entry.get("fields"))
    name = fields.pop("event", None) or fields.pop("message", None) or "log"
    return {"timeUnixNano": str(int(entry.get("timestamp") or 0) * 1000), "name": str(name),
            "attributes": key_values(fields)}
