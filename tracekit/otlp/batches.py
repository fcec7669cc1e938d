"""What decoding an OTLP request yields: Arrow columns plus what was rejected and why."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa

# Attribute maps travel as JSON text; the store turns them into VARIANT on insert.
EVENTS_TYPE = pa.list_(pa.struct([
    ("time", pa.timestamp("ns")),
    ("name", pa.string()),
    ("attributes", pa.string()),
    ("dropped_attributes_count", pa.uint32()),
]))
LINKS_TYPE = pa.list_(pa.struct([
    ("trace_id", pa.string()),
    ("span_id", pa.string()),
    ("trace_state", pa.string()),
    ("attributes", pa.string()),
    ("flags", pa.uint32()),
    ("dropped_attributes_count", pa.uint32()),
]))
RESOURCE_SCHEMA = pa.schema([
    ("resource_id", pa.uint64()),
    ("service_name", pa.string()),
    ("attributes", pa.string()),
])

SPAN_SCHEMA = pa.schema([
    ("trace_id", pa.string()),
    ("span_id", pa.string()),
    ("parent_span_id", pa.string()),
    ("trace_state", pa.string()),
    ("name", pa.string()),
    ("kind", pa.string()),
    ("start_time", pa.timestamp("ns")),
    ("end_time", pa.timestamp("ns")),
    ("duration_ns", pa.int64()),
    ("status_code", pa.string()),
    ("status_message", pa.string()),
    ("service_name", pa.string()),
    ("resource_id", pa.uint64()),
    ("scope_name", pa.string()),
    ("scope_version", pa.string()),
    ("attributes", pa.string()),
    ("events", EVENTS_TYPE),
    ("links", LINKS_TYPE),
    ("flags", pa.uint32()),
    ("dropped_attributes_count", pa.uint32()),
    ("dropped_events_count", pa.uint32()),
    ("dropped_links_count", pa.uint32()),
    ("ingest_notes", pa.list_(pa.string())),
])

LOG_SCHEMA = pa.schema([
    ("timestamp", pa.timestamp("ns")),
    ("observed_timestamp", pa.timestamp("ns")),
    ("trace_id", pa.string()),
    ("span_id", pa.string()),
    ("trace_flags", pa.uint32()),
    ("severity_number", pa.int32()),
    ("severity_text", pa.string()),
    ("body", pa.string()),
    ("attributes", pa.string()),
    ("service_name", pa.string()),
    ("resource_id", pa.uint64()),
    ("scope_name", pa.string()),
    ("scope_version", pa.string()),
    ("event_name", pa.string()),
    ("dropped_attributes_count", pa.uint32()),
])


@dataclass
class Rejections:
    """Items refused from a request, counted by reason, for OTLP partial success."""

    count: int = 0
    reasons: Counter = field(default_factory=Counter)

    def add(self, reason: str) -> None:
        self.count += 1
        self.reasons[reason] += 1

    def message(self, noun: str) -> str:
        """One line for partial_success.error_message, e.g. '2 spans rejected: ...'."""
        if not self.count:
            return ""
        parts = ", ".join(f"{n} {reason}" for reason, n in self.reasons.most_common())
        return f"{self.count} {noun} rejected: {parts}"


@dataclass
class DecodedBatch:
    """The spans and logs of one or more OTLP requests, as Arrow tables."""

    spans: pa.Table | None = None
    logs: pa.Table | None = None
    # resource_id -> (service name, attributes as JSON) for every resource the rows use
    resources: dict[int, tuple[str, str]] = field(default_factory=dict)
    rejected_spans: Rejections = field(default_factory=Rejections)
    rejected_logs: Rejections = field(default_factory=Rejections)
    # the distinct top-level keys of the spans' attribute maps (the store registers them)
    attribute_keys: frozenset[str] = frozenset()

    @property
    def span_count(self) -> int:
        return self.spans.num_rows if self.spans is not None else 0

    @property
    def log_count(self) -> int:
        return self.logs.num_rows if self.logs is not None else 0

    @property
    def nbytes(self) -> int:
        """The size of its rows as decoded Arrow tables."""
        return sum(table.nbytes for table in (self.spans, self.logs) if table is not None)


def resource_table(resources: dict[int, tuple[str, str]]) -> pa.Table:
    """A batch's resources (resource_id -> (service name, attributes as JSON)) as a table."""
    return pa.Table.from_pydict({
        "resource_id": list(resources),
        "service_name": [service for service, _ in resources.values()],
        "attributes": [text for _, text in resources.values()],
    }, schema=RESOURCE_SCHEMA)


def concat(batches: list[DecodedBatch]) -> DecodedBatch:
    """One batch holding the spans and logs of all `batches` (rejections are not kept)."""
    if len(batches) == 1:
        return batches[0]
    spans = [b.spans for b in batches if b.spans is not None]
    logs = [b.logs for b in batches if b.logs is not None]
    resources: dict[int, tuple[str, str]] = {}
    for b in batches:
        resources.update(b.resources)
    return DecodedBatch(
        spans=pa.concat_tables(spans) if spans else None,
        logs=pa.concat_tables(logs) if logs else None,
        resources=resources,
        attribute_keys=frozenset().union(*(b.attribute_keys for b in batches)),
    )


def split(batch: DecodedBatch, spans: int, logs: int) -> tuple[DecodedBatch, DecodedBatch]:
    """The batch's first `spans` spans and `logs` logs, and the rest. Both keep every resource
    and attribute key of the batch (the store registers them once)."""
    def cut(table: pa.Table | None, rows: int) -> tuple[pa.Table | None, pa.Table | None]:
        if table is None:
            return None, None
        return table.slice(0, rows), table.slice(rows)
    head_spans, tail_spans = cut(batch.spans, spans)
    head_logs, tail_logs = cut(batch.logs, logs)
    return (DecodedBatch(spans=head_spans, logs=head_logs, resources=batch.resources,
                         attribute_keys=batch.attribute_keys),
            DecodedBatch(spans=tail_spans, logs=tail_logs, resources=batch.resources,
                         attribute_keys=batch.attribute_keys))


def stream(table: pa.Table) -> pa.RecordBatchReader:
    """The table as a stream DuckDB reads once: registered in a long transaction, a table
    would stay in memory until the transaction ends (a row group of exports, ~64 MiB)."""
    return pa.RecordBatchReader.from_batches(table.schema, table.to_batches())
