"""Column builders shared by the protobuf and JSON decoders: validation, clamping, notes.

Decoders walk their own input form and hand each span or log record here as plain Python
values; these builders decide what is valid and produce the Arrow tables the store takes.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
import pyarrow as pa

from tracekit.redaction import DEFAULT_PATTERNS, Redactor, redactor_for
from tracekit.otlp.batches import (
    LOG_SCHEMA,
    SPAN_SCHEMA,
    DecodedBatch,
    Rejections,
)

# SPAN_KIND_UNSPECIFIED is read as INTERNAL, as the OTLP specification allows.
KINDS = ("INTERNAL", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
STATUS_CODES = ("UNSET", "OK", "ERROR")
INT64_MAX = 2**63 - 1
UNKNOWN_SERVICE = "unknown_service"
_ZERO_TRACE = bytes(16)
_ZERO_SPAN = bytes(8)
DEFAULT_REDACTOR = redactor_for(DEFAULT_PATTERNS)


def to_json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _clamp(ns: int, notes: list[str] | None) -> tuple[int, list[str] | None]:
    if ns > INT64_MAX:
        return INT64_MAX, (notes or []) + ["timestamp_clamped"]
    return ns, notes


def _table(columns: dict[str, list], schema: pa.Schema) -> pa.Table:
    """Lists of Python values as an Arrow table (timestamps arrive as nanosecond ints)."""
    arrays = []
    for field in schema:
        values = columns[field.name]
        if pa.types.is_timestamp(field.type):
            arrays.append(pa.array(values, pa.int64()).cast(field.type))
        else:
            arrays.append(pa.array(values, field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


class Resources:
    """The distinct resources of a batch, by a hash of their attributes."""

    def __init__(self, redact: Redactor) -> None:
        self.by_id: dict[int, tuple[str, str]] = {}
        self.redact = redact

    def add(self, attributes: dict[str, Any]) -> tuple[str, int]:
        """(service name, resource id). Keys are sorted so equal resources hash equal."""
        attributes = self.redact(attributes)
        service = attributes.get("service.name")
        if not isinstance(service, str) or not service:
            service = UNKNOWN_SERVICE
        text = orjson.dumps(attributes, option=orjson.OPT_SORT_KEYS)
        resource_id = int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little")
        self.by_id[resource_id] = (service, text.decode())
        return service, resource_id


class SpanColumns:
    """Appends spans; `batch()` gives the Arrow table and what was rejected."""

    def __init__(self, redact: Redactor = DEFAULT_REDACTOR) -> None:
        self.redact = redact
        self.columns: dict[str, list] = {name: [] for name in SPAN_SCHEMA.names}
        self.resources = Resources(redact)
        self.rejected = Rejections()
        # Bound appends, in SPAN_SCHEMA order: the per-span path does no dict lookups.
        self._appends = [self.columns[name].append for name in SPAN_SCHEMA.names]

    def add(self, trace_id: bytes, span_id: bytes, parent_span_id: bytes, trace_state: str,
            name: str, kind: int, start: int, end: int, status_code: int, status_message: str,
            service: str, resource_id: int, scope_name: str | None, scope_version: str | None,
            attributes: dict, events: list[dict] | None, links: list[dict] | None, flags: int,
            dropped_attributes: int, dropped_events: int, dropped_links: int) -> None:
        if len(trace_id) != 16 or trace_id == _ZERO_TRACE:
            self.rejected.add("with an invalid trace_id (need 16 non-zero bytes)")
            return
        if len(span_id) != 8 or span_id == _ZERO_SPAN:
            self.rejected.add("with an invalid span_id (need 8 non-zero bytes)")
            return
        notes = None
        if parent_span_id and (len(parent_span_id) != 8 or parent_span_id == _ZERO_SPAN):
            notes = ["invalid_parent_span_id"]
            parent_span_id = b""
        start, notes = _clamp(start, notes)
        end, notes = _clamp(end, notes)
        if end < start:
            notes = (notes or []) + ["end_before_start"]
        (a_trace, a_span, a_parent, a_state, a_name, a_kind, a_start, a_end, a_duration,
         a_code, a_message, a_service, a_resource, a_scope, a_version, a_attrs, a_events,
         a_links, a_flags, a_dropped_attrs, a_dropped_events, a_dropped_links,
         a_notes) = self._appends
        a_trace(trace_id.hex())
        a_span(span_id.hex())
        a_parent(parent_span_id.hex() if parent_span_id else None)
        a_state(trace_state or None)
        a_name(name)
        a_kind(KINDS[kind] if 0 <= kind < 6 else "INTERNAL")
        a_start(start)
        a_end(end)
        a_duration(end - start)
        a_code(STATUS_CODES[status_code] if 0 <= status_code < 3 else "UNSET")
        a_message(status_message or None)
        a_service(service)
        a_resource(resource_id)
        a_scope(scope_name)
        a_version(scope_version)
        redact = self.redact
        a_attrs(to_json(redact(attributes)))
        a_events([
            {"time": min(e["time"], INT64_MAX), "name": e["name"],
             "attributes": to_json(redact(e["attributes"])),
             "dropped_attributes_count": e["dropped_attributes_count"]}
            for e in events] if events else None)
        a_links([
            {"trace_id": link["trace_id"].hex(), "span_id": link["span_id"].hex(),
             "trace_state": link["trace_state"] or None, "attributes": to_json(redact(link["attributes"])),
             "flags": link["flags"], "dropped_attributes_count": link["dropped_attributes_count"]}
            for link in links] if links else None)
        a_flags(flags)
        a_dropped_attrs(dropped_attributes)
        a_dropped_events(dropped_events)
        a_dropped_links(dropped_links)
        a_notes(notes)

    def batch(self) -> DecodedBatch:
        if not self.columns["trace_id"]:
            return DecodedBatch(rejected_spans=self.rejected)
        return DecodedBatch(spans=_table(self.columns, SPAN_SCHEMA),
                            resources=self.resources.by_id, rejected_spans=self.rejected)


class LogColumns:
    """Appends log records; `batch()` gives the Arrow table and what was rejected."""

    def __init__(self, redact: Redactor = DEFAULT_REDACTOR) -> None:
        self.redact = redact
        self.columns: dict[str, list] = {name: [] for name in LOG_SCHEMA.names}
        self.resources = Resources(redact)
        self.rejected = Rejections()

    def add(self, time: int, observed_time: int, trace_id: bytes, span_id: bytes, flags: int,
            severity_number: int, severity_text: str, body: Any, has_body: bool,
            attributes: dict, service: str, resource_id: int, scope_name: str | None,
            scope_version: str | None, event_name: str, dropped_attributes: int) -> None:
        if trace_id and len(trace_id) != 16:
            self.rejected.add("with an invalid trace_id (need 16 bytes or none)")
            return
        if span_id and len(span_id) != 8:
            self.rejected.add("with an invalid span_id (need 8 bytes or none)")
            return
        observed = min(observed_time, INT64_MAX) or None
        c = self.columns
        c["timestamp"].append(min(time, INT64_MAX) or observed)
        c["observed_timestamp"].append(observed)
        c["trace_id"].append(trace_id.hex() if trace_id and trace_id != _ZERO_TRACE else None)
        c["span_id"].append(span_id.hex() if span_id and span_id != _ZERO_SPAN else None)
        c["trace_flags"].append(flags)
        c["severity_number"].append(severity_number)
        c["severity_text"].append(severity_text or None)
        if isinstance(body, dict):
            body = self.redact(body)
        c["body"].append(to_json(body) if has_body else None)
        c["attributes"].append(to_json(self.redact(attributes)))
        c["service_name"].append(service)
        c["resource_id"].append(resource_id)
        c["scope_name"].append(scope_name)
        c["scope_version"].append(scope_version)
        c["event_name"].append(event_name or None)
        c["dropped_attributes_count"].append(dropped_attributes)

    def batch(self) -> DecodedBatch:
        if not self.columns["service_name"]:
            return DecodedBatch(rejected_logs=self.rejected)
        return DecodedBatch(logs=_table(self.columns, LOG_SCHEMA),
                            resources=self.resources.by_id, rejected_logs=self.rejected)
