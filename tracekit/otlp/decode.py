"""OTLP protobuf requests → Arrow tables in the store's column order.

This is the ingest hot path: one pass over the messages, with attribute maps as JSON text
(DuckDB turns them into VARIANT on insert, keeping types).
"""

from __future__ import annotations

import base64
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tracekit.otlp.batches import DecodedBatch
from tracekit.otlp.columns import (
    CLIPS,
    DEFAULT_REDACTOR,
    DROPPED,
    MAP_CAPPED,
    MAX_ATTRIBUTES,
    TOO_DEEP,
    LogColumns,
    SpanColumns,
    clip_count,
    dropped_since,
    notes_since,
)
from tracekit.redaction import Redactor

MAX_DEPTH = 32


TOO_DEEP_VALUE = f"<truncated: nested deeper than {MAX_DEPTH} levels>"


def any_value(value: Any, depth: int = 0) -> Any:
    """An OTLP AnyValue as a JSON-ready Python value (bytes become base64 text); big maps and
    deep nesting are cut (noted in CLIPS), long strings later, in `columns`."""
    which = value.WhichOneof("value")
    if which == "string_value":
        return value.string_value
    if which == "int_value":
        return value.int_value
    if which == "bool_value":
        return value.bool_value
    if which == "double_value":
        return value.double_value
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    if which is None:
        return None
    if depth >= MAX_DEPTH:
        CLIPS.append((TOO_DEEP, 1))
        return TOO_DEEP_VALUE
    if which == "array_value":
        return [any_value(v, depth + 1) for v in value.array_value.values]
    entries = value.kvlist_value.values
    if len(entries) > MAX_ATTRIBUTES:
        entries = clip_count(entries, MAP_CAPPED)
    return {kv.key: any_value(kv.value, depth + 1) for kv in entries}


def attributes(key_values: Any) -> dict[str, Any]:
    """A repeated KeyValue as a dict; a repeated key keeps its last value. Past
    MAX_ATTRIBUTES, the rest are dropped (noted in CLIPS)."""
    if len(key_values) > MAX_ATTRIBUTES:
        key_values = clip_count(key_values, DROPPED)
    out = {}
    for kv in key_values:
        value = kv.value
        which = value.WhichOneof("value")
        if which == "string_value":
            out[kv.key] = value.string_value
        elif which == "int_value":
            out[kv.key] = value.int_value
        elif which == "bool_value":
            out[kv.key] = value.bool_value
        elif which == "double_value":
            out[kv.key] = value.double_value
        else:
            out[kv.key] = any_value(value)
    return out


def decode_traces(request: ExportTraceServiceRequest,
                  redact: Redactor = DEFAULT_REDACTOR) -> DecodedBatch:
    """Every valid span of the request as one Arrow table; invalid spans are counted."""
    columns = SpanColumns(redact)
    add = columns.add
    clips = CLIPS
    clips.clear()
    for resource_spans in request.resource_spans:
        service, resource_id = columns.resources.add(attributes(resource_spans.resource.attributes))
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope
            scope_name = scope.name or None
            scope_version = scope.version or None
            for span in scope_spans.spans:
                mark = len(clips)
                span_attributes = attributes(span.attributes)
                dropped = span.dropped_attributes_count
                if len(clips) != mark:
                    dropped = dropped_since(mark, dropped)
                status = span.status
                add(span.trace_id, span.span_id, span.parent_span_id, span.trace_state,
                    span.name, span.kind, span.start_time_unix_nano, span.end_time_unix_nano,
                    status.code, status.message, service, resource_id, scope_name, scope_version,
                    span_attributes,
                    [{"time": e.time_unix_nano, "name": e.name,
                      "attributes": attributes(e.attributes),
                      "dropped_attributes_count": e.dropped_attributes_count}
                     for e in span.events] if span.events else None,
                    [{"trace_id": link.trace_id, "span_id": link.span_id,
                      "trace_state": link.trace_state, "attributes": attributes(link.attributes),
                      "flags": link.flags, "dropped_attributes_count": link.dropped_attributes_count}
                     for link in span.links] if span.links else None,
                    span.flags, dropped, span.dropped_events_count, span.dropped_links_count,
                    notes_since(mark) if len(clips) != mark else None)
    return columns.batch()


def decode_logs(request: ExportLogsServiceRequest,
                redact: Redactor = DEFAULT_REDACTOR) -> DecodedBatch:
    """Every valid log record of the request as one Arrow table."""
    columns = LogColumns(redact)
    clips = CLIPS
    clips.clear()
    for resource_logs in request.resource_logs:
        service, resource_id = columns.resources.add(attributes(resource_logs.resource.attributes))
        for scope_logs in resource_logs.scope_logs:
            scope = scope_logs.scope
            for record in scope_logs.log_records:
                has_body = record.HasField("body")
                mark = len(clips)
                record_attributes = attributes(record.attributes)
                dropped = record.dropped_attributes_count
                if len(clips) != mark:
                    dropped = dropped_since(mark, dropped)
                columns.add(record.time_unix_nano, record.observed_time_unix_nano,
                            record.trace_id, record.span_id, record.flags,
                            record.severity_number, record.severity_text,
                            any_value(record.body) if has_body else None, has_body,
                            record_attributes, service, resource_id,
                            scope.name or None, scope.version or None, record.event_name,
                            dropped)
    return columns.batch()
