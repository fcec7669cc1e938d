"""The compiled decoders of OTLP trace requests (`_spans.c`, and `_otlp_json.c` in front of it
for OTLP/JSON) and the Arrow tables they fill.

`decode_traces_fast(data, redact)` gives the same DecodedBatch as
`decode_traces(ExportTraceServiceRequest.FromString(data), redact)` for the requests
exporters send, about ten times faster, or None when the request needs the reference decoder
(`decode.py`): a span it would reject, note or clamp, a value past a cap, invalid UTF-8, a
malformed message. None too when the extension was not built (no C compiler at install).
"""

from __future__ import annotations

import pyarrow as pa
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from tracekit.otlp.batches import EVENTS_TYPE, LINKS_TYPE, SPAN_SCHEMA, DecodedBatch
from tracekit.otlp.columns import CLIPS, KINDS, STATUS_CODES, Resources
from tracekit.otlp.decode import attributes
from tracekit.redaction import Redactor

try:
    from tracekit.otlp import _spans
except ImportError:     # not built: every request takes the Python decoder
    _spans = None
try:
    from tracekit.otlp import _otlp_json
except ImportError:     # not built: OTLP/JSON takes the Python decoder
    _otlp_json = None

AVAILABLE = _spans is not None
JSON_AVAILABLE = AVAILABLE and _otlp_json is not None
_KIND_NAMES = pa.array(KINDS, pa.string())
_STATUS_NAMES = pa.array(STATUS_CODES, pa.string())
_NO_NOTES = pa.list_(pa.string())


def decode_traces_json_fast(data: bytes, redact: Redactor) -> DecodedBatch | None:
    """An OTLP/JSON trace request's spans as the reference (`json_decode.decode_traces_json`)
    gives them: written as protobuf (`_otlp_json.c`) and decoded by the compiled decoder, or
    None when either steps aside."""
    if not JSON_AVAILABLE:
        return None
    protobuf = _otlp_json.traces(data)
    return None if protobuf is None else decode_traces_fast(protobuf, redact)


def decode_traces_fast(data: bytes, redact: Redactor) -> DecodedBatch | None:
    """The request's spans as the reference decoder gives them, or None (see the module)."""
    if _spans is None:
        return None
    decoded = _spans.decode(data, redact._is_secret if redact._regex is not None else None)
    if decoded is None:
        return None
    count, ranges, buffers, keys = decoded
    resources = Resources(redact)
    services, ids = [], []
    for span in ranges:
        try:
            resource = Resource.FromString(data[span[0]:span[1]]) if span else Resource()
        except Exception:   # invalid UTF-8 and the like: the reference decoder repairs or refuses
            return None
        mark = len(CLIPS)
        service, resource_id = resources.add(attributes(resource.attributes))
        del CLIPS[mark:]    # the reference decoder keeps no notes for resources either
        services.append(service)
        ids.append(resource_id)
    if not count:
        return DecodedBatch()   # as the reference decoder: no rows, no resources
    resource = _array(pa.int32(), count, buffers["resource"])
    columns = {
        "trace_id": _strings(count, buffers["trace_id"]),
        "span_id": _strings(count, buffers["span_id"]),
        "parent_span_id": _strings(count, buffers["parent_span_id"]),
        "trace_state": _strings(count, buffers["trace_state"]),
        "name": _strings(count, buffers["name"]),
        "kind": _KIND_NAMES.take(_array(pa.uint8(), count, buffers["kind"])),
        "start_time": _array(pa.timestamp("ns"), count, buffers["start_time"]),
        "end_time": _array(pa.timestamp("ns"), count, buffers["end_time"]),
        "duration_ns": _array(pa.int64(), count, buffers["duration_ns"]),
        "status_code": _STATUS_NAMES.take(_array(pa.uint8(), count, buffers["status_code"])),
        "status_message": _strings(count, buffers["status_message"]),
        "service_name": pa.array(services, pa.string()).take(resource),
        "resource_id": pa.array(ids, pa.uint64()).take(resource),
        "scope_name": _strings(count, buffers["scope_name"]),
        "scope_version": _strings(count, buffers["scope_version"]),
        "attributes": _strings(count, buffers["attributes"]),
        "events": _events(count, buffers),
        "links": _links(count, buffers),
        "flags": _array(pa.uint32(), count, buffers["flags"]),
        "dropped_attributes_count": _array(pa.uint32(), count, buffers["dropped_attributes_count"]),
        "dropped_events_count": _array(pa.uint32(), count, buffers["dropped_events_count"]),
        "dropped_links_count": _array(pa.uint32(), count, buffers["dropped_links_count"]),
        "ingest_notes": pa.nulls(count, _NO_NOTES),
    }
    table = pa.Table.from_arrays([columns[name] for name in SPAN_SCHEMA.names], schema=SPAN_SCHEMA)
    return DecodedBatch(spans=table, resources=resources.by_id, attribute_keys=frozenset(keys))


def _array(type_: pa.DataType, count: int, data: bytes) -> pa.Array:
    return pa.Array.from_buffers(type_, count, [None, pa.py_buffer(data)])


def _validity(bitmap: bytes | None) -> pa.Buffer | None:
    return pa.py_buffer(bitmap) if bitmap is not None else None


def _strings(count: int, column: tuple) -> pa.Array:
    bitmap, offsets, data, nulls = column
    return pa.Array.from_buffers(pa.string(), count, [_validity(bitmap), pa.py_buffer(offsets),
                                                      pa.py_buffer(data)], null_count=nulls)


def _list(type_: pa.ListType, count: int, column: tuple, children: list[pa.Array]) -> pa.Array:
    bitmap, offsets, nulls = column
    items = pa.StructArray.from_arrays(children, fields=list(type_.value_type))
    return pa.Array.from_buffers(type_, count, [_validity(bitmap), pa.py_buffer(offsets)],
                                 null_count=nulls, children=[items])


def _events(count: int, b: dict) -> pa.Array:
    n = len(b["event_time"]) // 8
    return _list(EVENTS_TYPE, count, b["events"], [
        _array(pa.timestamp("ns"), n, b["event_time"]),
        _strings(n, b["event_name"]),
        _strings(n, b["event_attributes"]),
        _array(pa.uint32(), n, b["event_dropped"]),
    ])


def _links(count: int, b: dict) -> pa.Array:
    n = len(b["link_flags"]) // 4
    return _list(LINKS_TYPE, count, b["links"], [
        _strings(n, b["link_trace_id"]),
        _strings(n, b["link_span_id"]),
        _strings(n, b["link_trace_state"]),
        _strings(n, b["link_attributes"]),
        _array(pa.uint32(), n, b["link_flags"]),
        _array(pa.uint32(), n, b["link_dropped"]),
    ])
