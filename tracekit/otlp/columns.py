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
# The latest timestamp DuckDB stores as a date (2262-04-11T23:47:16.854775806): 2**63 - 1 is
# its `infinity`, which has no epoch and no arithmetic.
MAX_TIMESTAMP_NS = 2**63 - 2
UNKNOWN_SERVICE = "unknown_service"
_ZERO_TRACE = bytes(16)
_ZERO_SPAN = bytes(8)
DEFAULT_REDACTOR = redactor_for(DEFAULT_PATTERNS)
UINT32_MAX = 2**32 - 1

# Caps on hostile values (see docs/guides/collector.md, "Hostile values"). A request is at
# most 64 MiB, so these bound what one value or one map costs the store and its readers, not
# the decoder's memory.
MAX_ATTRIBUTES = 1_000          # per span, event, link, log record, resource and nested map
MAX_VALUE_CHARS = 1_048_576     # per string value, and per bytes value as base64 (768 KiB)

# What the decoders' caps did while decoding the current request, as (note, count): decoders
# take a mark (its length) before a span and turn the entries added since into ingest_notes
# and dropped_attributes_count. Decoding runs one request at a time per process (decode
# workers, `tracekit import`); each decode starts by clearing it.
CLIPS: list[tuple[str, int]] = []
TRUNCATED = "attribute_truncated"        # a string (or base64 bytes) value cut to the cap
DROPPED = "attributes_dropped"           # attributes past MAX_ATTRIBUTES (counted as dropped)
MAP_CAPPED = "map_entries_dropped"       # entries of a nested map past MAX_ATTRIBUTES
TOO_DEEP = "value_nested_too_deep"       # a value nested deeper than MAX_DEPTH, replaced


def clip_count(items: Any, note: str) -> Any:
    """The first MAX_ATTRIBUTES of `items` (the caller checked there are more)."""
    CLIPS.append((note, len(items) - MAX_ATTRIBUTES))
    return items[:MAX_ATTRIBUTES]


def dropped_since(mark: int, dropped: int) -> int:
    """`dropped` plus the attributes dropped since `mark`, within uint32."""
    return min(UINT32_MAX, dropped + sum(n for note, n in CLIPS[mark:] if note == DROPPED))


def notes_since(mark: int) -> list[str] | None:
    """The distinct notes added since `mark`, in order."""
    return list(dict.fromkeys(note for note, _ in CLIPS[mark:])) or None


# Long strings are cut where values become JSON, not value by value while decoding: a JSON
# text no longer than MAX_VALUE_CHARS cannot hold a longer string, so the hot path pays one
# length check per map, and only a longer text is walked.
def cut_strings(value: Any) -> tuple[Any, bool]:
    """`value` with every string longer than MAX_VALUE_CHARS cut to it; whether any was."""
    if isinstance(value, str):
        return (value[:MAX_VALUE_CHARS], True) if len(value) > MAX_VALUE_CHARS else (value, False)
    if isinstance(value, dict):
        out, any_cut = {}, False
        for key, item in value.items():
            out[key], cut = cut_strings(item)
            any_cut |= cut
        return out, any_cut
    if isinstance(value, list):
        items = [cut_strings(item) for item in value]
        return [item for item, _ in items], any(cut for _, cut in items)
    return value, False


def capped_json(value: Any) -> tuple[str, bool]:
    """`value` as JSON with long strings cut (see cut_strings); whether any was."""
    text = to_json(value)
    if len(text) <= MAX_VALUE_CHARS:
        return text, False
    value, cut = cut_strings(value)
    return (to_json(value) if cut else text), cut


def to_json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _clamp(ns: int, notes: list[str] | None) -> tuple[int, list[str] | None]:
    if ns > MAX_TIMESTAMP_NS:
        return MAX_TIMESTAMP_NS, (notes or []) + ["timestamp_clamped"]
    if ns < 0:  # only OTLP/JSON can say so (protobuf timestamps are unsigned)
        return 0, (notes or []) + ["timestamp_clamped"]
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
        if len(text) > MAX_VALUE_CHARS:
            attributes, cut = cut_strings(attributes)
            text = orjson.dumps(attributes, option=orjson.OPT_SORT_KEYS) if cut else text
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
        self.attribute_keys: set[str] = set()
        # Bound appends, in SPAN_SCHEMA order: the per-span path does no dict lookups.
        self._appends = [self.columns[name].append for name in SPAN_SCHEMA.names]

    def add(self, trace_id: bytes, span_id: bytes, parent_span_id: bytes, trace_state: str,
            name: str, kind: int, start: int, end: int, status_code: int, status_message: str,
            service: str, resource_id: int, scope_name: str | None, scope_version: str | None,
            attributes: dict, events: list[dict] | None, links: list[dict] | None, flags: int,
            dropped_attributes: int, dropped_events: int, dropped_links: int,
            notes: list[str] | None = None) -> None:
        if len(trace_id) != 16 or trace_id == _ZERO_TRACE:
            self.rejected.add("with an invalid trace_id (need 16 non-zero bytes)")
            return
        if len(span_id) != 8 or span_id == _ZERO_SPAN:
            self.rejected.add("with an invalid span_id (need 8 non-zero bytes)")
            return
        if parent_span_id and (len(parent_span_id) != 8 or parent_span_id == _ZERO_SPAN):
            notes = (notes or []) + ["invalid_parent_span_id"]
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
        text = to_json(redact(attributes))
        if len(text) > MAX_VALUE_CHARS:
            text, cut = capped_json(redact(attributes))
            if cut:
                notes = (notes or []) + [TRUNCATED]
        a_attrs(text)
        self.attribute_keys.update(attributes)
        if events:
            events = [
                {"time": min(max(e["time"], 0), MAX_TIMESTAMP_NS), "name": e["name"],
                 "attributes": to_json(redact(e["attributes"])),
                 "dropped_attributes_count": e["dropped_attributes_count"]}
                for e in events]
            notes = self._cut_long(events, notes)
        a_events(events or None)
        if links:
            links = [
                {"trace_id": link["trace_id"].hex(), "span_id": link["span_id"].hex(),
                 "trace_state": link["trace_state"] or None,
                 "attributes": to_json(redact(link["attributes"])),
                 "flags": link["flags"], "dropped_attributes_count": link["dropped_attributes_count"]}
                for link in links]
            notes = self._cut_long(links, notes)
        a_links(links or None)
        a_flags(flags)
        a_dropped_attrs(dropped_attributes)
        a_dropped_events(dropped_events)
        a_dropped_links(dropped_links)
        a_notes(notes)

    @staticmethod
    def _cut_long(items: list[dict], notes: list[str] | None) -> list[str] | None:
        """Cut long strings in events' or links' attributes (JSON text), noting it."""
        for item in items:
            if len(item["attributes"]) > MAX_VALUE_CHARS:
                item["attributes"], cut = capped_json(orjson.loads(item["attributes"]))
                if cut and TRUNCATED not in (notes or ()):
                    notes = (notes or []) + [TRUNCATED]
        return notes

    def batch(self) -> DecodedBatch:
        if not self.columns["trace_id"]:
            return DecodedBatch(rejected_spans=self.rejected)
        return DecodedBatch(spans=_table(self.columns, SPAN_SCHEMA),
                            resources=self.resources.by_id, rejected_spans=self.rejected,
                            attribute_keys=frozenset(self.attribute_keys))


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
        observed = min(max(observed_time, 0), MAX_TIMESTAMP_NS) or None
        c = self.columns
        c["timestamp"].append(min(max(time, 0), MAX_TIMESTAMP_NS) or observed)
        c["observed_timestamp"].append(observed)
        c["trace_id"].append(trace_id.hex() if trace_id and trace_id != _ZERO_TRACE else None)
        c["span_id"].append(span_id.hex() if span_id and span_id != _ZERO_SPAN else None)
        c["trace_flags"].append(flags)
        c["severity_number"].append(severity_number)
        c["severity_text"].append(severity_text or None)
        if isinstance(body, dict):
            body = self.redact(body)
        # Logs have no ingest_notes: a cut body or value is cut silently
        # (docs/guides/collector.md).
        c["body"].append(capped_json(body)[0] if has_body else None)
        c["attributes"].append(capped_json(self.redact(attributes))[0])
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
