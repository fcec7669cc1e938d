"""OTLP protobuf requests → Arrow tables in the store's column order.

This is the ingest hot path: one pass over the messages, appending to plain lists, with
attribute maps serialised to JSON (DuckDB turns them into VARIANT on insert, keeping types).
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import orjson
import pyarrow as pa
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tracekit.otlp.batches import (
    EVENTS_TYPE,
    LINKS_TYPE,
    LOG_SCHEMA,
    SPAN_SCHEMA,
    DecodedBatch,
    Rejections,
)

# SPAN_KIND_UNSPECIFIED is read as INTERNAL, as the OTLP specification allows.
KINDS = ("INTERNAL", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
STATUS_CODES = ("UNSET", "OK", "ERROR")
MAX_DEPTH = 32
INT64_MAX = 2**63 - 1
UNKNOWN_SERVICE = "unknown_service"
_ZERO_TRACE = bytes(16)
_ZERO_SPAN = bytes(8)


def any_value(value: Any, depth: int = 0) -> Any:
    """An OTLP AnyValue as a JSON-ready Python value (bytes become base64 text)."""
    which = value.WhichOneof("value")
    if which == "string_value":
        return value.string_value
    if which == "int_value":
        return value.int_value
    if which == "bool_value":
        return value.bool_value
    if which == "double_value":
        return value.double_value
    if depth >= MAX_DEPTH:
        return f"<truncated: nested deeper than {MAX_DEPTH} levels>"
    if which == "array_value":
        return [any_value(v, depth + 1) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: any_value(kv.value, depth + 1) for kv in value.kvlist_value.values}
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    return None


def attributes(key_values: Any) -> dict[str, Any]:
    """A repeated KeyValue as a dict; a repeated key keeps its last value."""
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


def _json(obj: Any) -> str:
    return orjson.dumps(obj).decode()


def _timestamp(ns: int, notes: list[str] | None) -> tuple[int, list[str] | None]:
    if ns > INT64_MAX:
        notes = (notes or []) + ["timestamp_clamped"]
        return INT64_MAX, notes
    return ns, notes


def _resource(resource: Any, resources: dict[int, tuple[str, str]]) -> tuple[str, int]:
    """(service name, resource id), adding the resource to `resources`.

    The id is a hash of the attributes with sorted keys, so the same resource sent by many
    requests (or processes) is stored once.
    """
    attrs = attributes(resource.attributes)
    service = attrs.get("service.name")
    if not isinstance(service, str) or not service:
        service = UNKNOWN_SERVICE
    text = orjson.dumps(attrs, option=orjson.OPT_SORT_KEYS)
    resource_id = int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little")
    resources[resource_id] = (service, text.decode())
    return service, resource_id


def decode_traces(request: ExportTraceServiceRequest) -> DecodedBatch:
    """Every valid span of the request as one Arrow table; invalid spans are counted."""
    rejected = Rejections()
    trace_ids: list = []
    span_ids: list = []
    parents: list = []
    trace_states: list = []
    names: list = []
    kinds: list = []
    starts: list = []
    ends: list = []
    durations: list = []
    status_codes: list = []
    status_messages: list = []
    services: list = []
    resource_ids: list = []
    resources: dict[int, tuple[str, str]] = {}
    scope_names: list = []
    scope_versions: list = []
    attrs_col: list = []
    events_col: list = []
    links_col: list = []
    flags_col: list = []
    dropped_attrs: list = []
    dropped_events: list = []
    dropped_links: list = []
    notes_col: list = []

    for resource_spans in request.resource_spans:
        service, resource_id = _resource(resource_spans.resource, resources)
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope
            scope_name = scope.name or None
            scope_version = scope.version or None
            for span in scope_spans.spans:
                trace_id = span.trace_id
                span_id = span.span_id
                if len(trace_id) != 16 or trace_id == _ZERO_TRACE:
                    rejected.add("with an invalid trace_id (need 16 non-zero bytes)")
                    continue
                if len(span_id) != 8 or span_id == _ZERO_SPAN:
                    rejected.add("with an invalid span_id (need 8 non-zero bytes)")
                    continue
                parent = span.parent_span_id
                notes = None
                if parent and (len(parent) != 8 or parent == _ZERO_SPAN):
                    notes = ["invalid_parent_span_id"]
                    parent = b""
                start, notes = _timestamp(span.start_time_unix_nano, notes)
                end, notes = _timestamp(span.end_time_unix_nano, notes)
                if end < start:
                    notes = (notes or []) + ["end_before_start"]
                status = span.status

                trace_ids.append(trace_id.hex())
                span_ids.append(span_id.hex())
                parents.append(parent.hex() if parent else None)
                trace_states.append(span.trace_state or None)
                names.append(span.name)
                kind = span.kind
                kinds.append(KINDS[kind] if 0 <= kind < 6 else "INTERNAL")
                starts.append(start)
                ends.append(end)
                durations.append(end - start)
                code = status.code
                status_codes.append(STATUS_CODES[code] if 0 <= code < 3 else "UNSET")
                status_messages.append(status.message or None)
                services.append(service)
                resource_ids.append(resource_id)
                scope_names.append(scope_name)
                scope_versions.append(scope_version)
                attrs_col.append(_json(attributes(span.attributes)))
                if span.events:
                    events_col.append([
                        {
                            "time": min(e.time_unix_nano, INT64_MAX),
                            "name": e.name,
                            "attributes": _json(attributes(e.attributes)),
                            "dropped_attributes_count": e.dropped_attributes_count,
                        }
                        for e in span.events
                    ])
                else:
                    events_col.append(None)
                if span.links:
                    links_col.append([
                        {
                            "trace_id": link.trace_id.hex(),
                            "span_id": link.span_id.hex(),
                            "trace_state": link.trace_state or None,
                            "attributes": _json(attributes(link.attributes)),
                            "flags": link.flags,
                            "dropped_attributes_count": link.dropped_attributes_count,
                        }
                        for link in span.links
                    ])
                else:
                    links_col.append(None)
                flags_col.append(span.flags)
                dropped_attrs.append(span.dropped_attributes_count)
                dropped_events.append(span.dropped_events_count)
                dropped_links.append(span.dropped_links_count)
                notes_col.append(notes)

    if not trace_ids:
        return DecodedBatch(rejected_spans=rejected)
    table = pa.Table.from_arrays(
        [
            pa.array(trace_ids, pa.string()),
            pa.array(span_ids, pa.string()),
            pa.array(parents, pa.string()),
            pa.array(trace_states, pa.string()),
            pa.array(names, pa.string()),
            pa.array(kinds, pa.string()),
            pa.array(starts, pa.int64()).cast(pa.timestamp("ns")),
            pa.array(ends, pa.int64()).cast(pa.timestamp("ns")),
            pa.array(durations, pa.int64()),
            pa.array(status_codes, pa.string()),
            pa.array(status_messages, pa.string()),
            pa.array(services, pa.string()),
            pa.array(resource_ids, pa.uint64()),
            pa.array(scope_names, pa.string()),
            pa.array(scope_versions, pa.string()),
            pa.array(attrs_col, pa.string()),
            pa.array(events_col, EVENTS_TYPE),
            pa.array(links_col, LINKS_TYPE),
            pa.array(flags_col, pa.uint32()),
            pa.array(dropped_attrs, pa.uint32()),
            pa.array(dropped_events, pa.uint32()),
            pa.array(dropped_links, pa.uint32()),
            pa.array(notes_col, pa.list_(pa.string())),
        ],
        schema=SPAN_SCHEMA,
    )
    return DecodedBatch(spans=table, resources=resources, rejected_spans=rejected)


def decode_logs(request: ExportLogsServiceRequest) -> DecodedBatch:
    """Every log record of the request as one Arrow table."""
    rejected = Rejections()
    rows: dict[str, list] = {name: [] for name in LOG_SCHEMA.names}
    resources: dict[int, tuple[str, str]] = {}
    for resource_logs in request.resource_logs:
        service, resource_id = _resource(resource_logs.resource, resources)
        for scope_logs in resource_logs.scope_logs:
            scope = scope_logs.scope
            for record in scope_logs.log_records:
                trace_id = record.trace_id
                span_id = record.span_id
                if trace_id and len(trace_id) != 16:
                    rejected.add("with an invalid trace_id (need 16 bytes or none)")
                    continue
                if span_id and len(span_id) != 8:
                    rejected.add("with an invalid span_id (need 8 bytes or none)")
                    continue
                observed = min(record.observed_time_unix_nano, INT64_MAX) or None
                when = min(record.time_unix_nano, INT64_MAX) or observed
                rows["timestamp"].append(when)
                rows["observed_timestamp"].append(observed)
                rows["trace_id"].append(trace_id.hex() if trace_id and trace_id != _ZERO_TRACE else None)
                rows["span_id"].append(span_id.hex() if span_id and span_id != _ZERO_SPAN else None)
                rows["trace_flags"].append(record.flags)
                rows["severity_number"].append(record.severity_number)
                rows["severity_text"].append(record.severity_text or None)
                rows["body"].append(_json(any_value(record.body)) if record.HasField("body") else None)
                rows["attributes"].append(_json(attributes(record.attributes)))
                rows["service_name"].append(service)
                rows["resource_id"].append(resource_id)
                rows["scope_name"].append(scope.name or None)
                rows["scope_version"].append(scope.version or None)
                rows["event_name"].append(record.event_name or None)
                rows["dropped_attributes_count"].append(record.dropped_attributes_count)
    if not rows["service_name"]:
        return DecodedBatch(rejected_logs=rejected)
    arrays = []
    for f in LOG_SCHEMA:
        if pa.types.is_timestamp(f.type):
            arrays.append(pa.array(rows[f.name], pa.int64()).cast(f.type))
        else:
            arrays.append(pa.array(rows[f.name], f.type))
    return DecodedBatch(logs=pa.Table.from_arrays(arrays, schema=LOG_SCHEMA), resources=resources,
                        rejected_logs=rejected)
