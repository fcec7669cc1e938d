"""The lake's Iceberg tables: span_rows, log_rows and resources, with the local store's
column names (001_initial.sql) and the nearest types Iceberg v2 has, plus collector_id.

Times are microsecond timestamps (v2 has no nanoseconds; duration_ns stays exact), UBIGINT
ids DECIMAL(20, 0), UINTEGER counts and flags BIGINT, VARIANT maps JSON text. Spans are
partitioned by the hour of their start, logs by the hour of their timestamp.
"""

from __future__ import annotations

import itertools

TABLES = ("resources", "span_rows", "log_rows")
# The analysis tables `tracekit analyze --lake URI --engine spark` commits, as a local store
# has them (005_analysis_tables.sql): per flow, then per flow type.
ANALYSIS_TABLES = ("flow_rows", "flow_spans", "flow_edges", "critical_path", "flow_traces",
                   "flow_links", "flow_message_ids", "flow_business_keys",
                   "flow_type_steps", "flow_shapes", "flow_type_rows")
# Iceberg's commit retries (pyiceberg applies them): a commit made on a snapshot that another
# collector's commit replaced is redone on the new one, waiting 50 ms, 100 ms, ... up to 2 s
# between tries (with jitter, so two collectors do not collide again at once).
COMMIT_RETRIES = {
    "commit.retry.num-retries": "12",
    "commit.retry.min-wait-ms": "50",
    "commit.retry.max-wait-ms": "2000",
    "commit.retry.total-timeout-ms": "60000",
}
PARTITIONED_BY = {"span_rows": "start_time", "log_rows": "timestamp"}


def _schema(columns: list[tuple[str, object]]):
    """An Iceberg schema of optional fields, field ids assigned in order (nested ones too)."""
    from pyiceberg.schema import Schema
    from pyiceberg.types import ListType, NestedField, StructType

    ids = itertools.count(1)

    def typed(kind):
        if isinstance(kind, list):          # [element]: a list
            return ListType(next(ids), typed(kind[0]), element_required=False)
        if isinstance(kind, dict):          # {name: type}: a struct
            return StructType(*fields(kind.items()))
        return kind

    def fields(items):
        numbered = [(next(ids), name, kind) for name, kind in items]
        return [NestedField(field_id, name, typed(kind), required=False)
                for field_id, name, kind in numbered]

    return Schema(*fields(columns))


def schemas() -> dict:
    """Each table's Iceberg schema."""
    from pyiceberg.types import (DecimalType, IntegerType, LongType, StringType, TimestampType,
                                 TimestamptzType)

    text, long, time_, ubigint = StringType(), LongType(), TimestampType(), DecimalType(20, 0)
    return {
        "resources": _schema([
            ("resource_id", ubigint), ("service_name", text), ("attributes", text),
            ("first_seen", TimestamptzType()), ("collector_id", text)]),
        "span_rows": _schema([
            ("trace_id", text), ("span_id", text), ("parent_span_id", text),
            ("trace_state", text), ("name", text), ("kind", text), ("start_time", time_),
            ("end_time", time_), ("duration_ns", long), ("status_code", text),
            ("status_message", text), ("service_name", text), ("resource_id", ubigint),
            ("scope_name", text), ("scope_version", text), ("attributes", text),
            ("events", [{"time": time_, "name": text, "attributes": text,
                         "dropped_attributes_count": long}]),
            ("links", [{"trace_id": text, "span_id": text, "trace_state": text,
                        "attributes": text, "flags": long, "dropped_attributes_count": long}]),
            ("flags", long), ("dropped_attributes_count", long), ("dropped_events_count", long),
            ("dropped_links_count", long), ("ingest_notes", [text]), ("batch_id", long),
            ("collector_id", text)]),
        "log_rows": _schema([
            ("timestamp", time_), ("observed_timestamp", time_), ("trace_id", text),
            ("span_id", text), ("trace_flags", long), ("severity_number", IntegerType()),
            ("severity_text", text), ("body", text), ("attributes", text),
            ("service_name", text), ("resource_id", ubigint), ("scope_name", text),
            ("scope_version", text), ("event_name", text), ("dropped_attributes_count", long),
            ("batch_id", long), ("collector_id", text)]),
    }


def _partition_spec(schema, column: str | None):
    from pyiceberg.partitioning import PartitionField, PartitionSpec
    from pyiceberg.transforms import HourTransform

    if column is None:
        return PartitionSpec()
    return PartitionSpec(PartitionField(source_id=schema.find_field(column).field_id,
                                        field_id=1000, transform=HourTransform(),
                                        name=f"{column}_hour"))


def ensure_tables(catalog) -> dict:
    """The lake's tables by name, created if they are not there yet (by whichever collector
    comes first: one that loses the race loads the winner's)."""
    from pyiceberg.exceptions import NoSuchTableError, TableAlreadyExistsError

    catalog.create_namespace_if_not_exists("tracekit")
    tables = {}
    for name, schema in schemas().items():
        identifier = f"tracekit.{name}"
        try:
            tables[name] = catalog.load_table(identifier)
            continue
        except NoSuchTableError:
            pass
        try:
            tables[name] = catalog.create_table(
                identifier, schema, partition_spec=_partition_spec(schema, PARTITIONED_BY.get(name)),
                properties={"format-version": "2", **COMMIT_RETRIES})
        except TableAlreadyExistsError:
            tables[name] = catalog.load_table(identifier)
    return tables


def load_tables(catalog) -> dict:
    """The lake's tables by name (a LakeUnavailable error if no collector created them)."""
    from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError

    from tracekit.lake.location import LakeUnavailable

    try:
        return {name: catalog.load_table(f"tracekit.{name}") for name in TABLES}
    except (NoSuchTableError, NoSuchNamespaceError):
        raise LakeUnavailable("the lake has no tracekit tables yet: start a collector with "
                              "`tracekit collect --lake URI` first") from None
