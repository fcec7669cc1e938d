"""The intake: where a collector's exports are committed before they reach the store's tables.

A collector acknowledges an export once it is committed here, in a second DuckDB file beside
the store (`<store>.intake`, attached to the writer's connection as `tracekit_intake`), and
moves acknowledged exports from here into `span_rows` and `log_rows` in larger transactions of
its own. Why a second file: DuckDB takes no commit into a database while it checkpoints that
database (measured: an insert waited 1.1 s behind a 2.4 s checkpoint of the same file; into
an attached file, none waited over 26 ms), and the store's checkpoints, which compress a row
group and shred its attribute maps into typed columns, were a third of the collector's time.
Now exporters are acknowledged while the store checkpoints, and the moves, larger than any one
export, cost less per span.

Its tables hold the decoded rows as they came, each tagged with the sequence number of the
export it came in (`requests`): DuckDB stores them in columns, compressed, as it does any table
(whole exports as single BLOBs of Arrow IPC were cheaper to write, but DuckDB could not read
130 MB of them back in 128 MiB of memory, which a restart after a crash may have to do).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from tracekit import queries
from tracekit.otlp.batches import LOG_SCHEMA, RESOURCE_SCHEMA, SPAN_SCHEMA, DecodedBatch, resource_table

ALIAS = "tracekit_intake"    # the attached database's name in the writer's connection
SUFFIX = ".intake"           # its file: <store>.intake

REQUEST_SCHEMA = pa.schema([
    ("seq", pa.uint64()),
    ("source", pa.string()),
    ("spans", pa.uint32()),
    ("logs", pa.uint32()),
    ("attribute_keys", pa.list_(pa.string())),
])
# The intake's row tables: the decoded Arrow schemas, after the export's sequence number.
ROW_TABLES = {"spans": SPAN_SCHEMA, "logs": LOG_SCHEMA, "resources": RESOURCE_SCHEMA}


@dataclass(frozen=True)
class Accepted:
    """Exports committed to the intake together (one transaction): acknowledged."""

    first_seq: int
    last_seq: int
    spans: int
    logs: int


def create_tables(cur: duckdb.DuckDBPyConnection) -> None:
    """The intake's tables, if it has none yet (a new intake file)."""
    cur.execute(queries.load("intake_tables"))
    for name, schema in ROW_TABLES.items():
        cur.register("intake_schema", pa.Table.from_batches([], schema=schema))
        cur.execute(f"CREATE TABLE IF NOT EXISTS {ALIAS}.{name} AS "
                    "SELECT 0::UBIGINT AS seq, * FROM intake_schema LIMIT 0")
        cur.unregister("intake_schema")


def _tagged(tables: list[tuple[int, pa.Table | None]]) -> pa.Table | None:
    """The tables' rows in one table, each after its export's sequence number."""
    parts = [table.add_column(0, "seq", pa.array([seq] * table.num_rows, pa.uint64()))
             for seq, table in tables if table is not None and table.num_rows]
    return pa.concat_tables(parts) if parts else None


def write(cur: duckdb.DuckDBPyConnection, batches: list[tuple[DecodedBatch, str]],
          first_seq: int) -> None:
    """Insert `batches` (each with its source), numbered from `first_seq`, in the cursor's
    open transaction."""
    numbered = list(enumerate(batches, start=first_seq))
    cur.register("accepted", pa.Table.from_pylist([
        {"seq": seq, "source": source, "spans": batch.span_count, "logs": batch.log_count,
         "attribute_keys": sorted(batch.attribute_keys)} for seq, (batch, source) in numbered],
        schema=REQUEST_SCHEMA))
    cur.execute(queries.load("intake_insert"))
    cur.unregister("accepted")
    rows = {
        "spans": _tagged([(seq, b.spans) for seq, (b, _) in numbered]),
        "logs": _tagged([(seq, b.logs) for seq, (b, _) in numbered]),
        "resources": _tagged([(seq, resource_table(b.resources)) for seq, (b, _) in numbered
                              if b.resources]),
    }
    for name, table in rows.items():
        if table is not None:
            cur.register("accepted_rows", table)
            cur.execute(f"INSERT INTO {ALIAS}.{name} SELECT * FROM accepted_rows")
            cur.unregister("accepted_rows")


def read(cur: duckdb.DuckDBPyConnection, moved_through: int,
         max_items: int) -> tuple[int, set[str], DecodedBatch] | None:
    """The oldest exports after `moved_through`, whole, at least one, up to about `max_items`
    spans and logs: the last one's sequence number, their sources, and their rows in one
    batch. None if there are none."""
    upto = cur.execute(queries.load("intake_next"), {
        "moved_through": moved_through, "max_items": max_items}).fetchall()[0][0]
    if upto is None:
        return None
    window = [moved_through, upto]
    sources = {row[0] for row in cur.execute(
        f"SELECT DISTINCT source FROM {ALIAS}.requests WHERE seq > ? AND seq <= ?", window).fetchall()}
    keys = {row[0] for row in cur.execute(
        f"SELECT DISTINCT unnest(attribute_keys) FROM {ALIAS}.requests WHERE seq > ? AND seq <= ?",
        window).fetchall()}
    tables = {}
    for name, schema in ROW_TABLES.items():
        # A relation's Arrow, not a result's: that one DuckDB copies (and warns each time).
        table = cur.sql(f"SELECT * EXCLUDE (seq) FROM {ALIAS}.{name} WHERE seq > $1 AND seq <= $2",
                        params=window).to_arrow_table()
        tables[name] = table.cast(schema) if table.num_rows else None
    resources = {} if tables["resources"] is None else {
        rid: (service, text) for rid, service, text in zip(
            *(tables["resources"].column(name).to_pylist() for name in RESOURCE_SCHEMA.names))}
    return upto, sources, DecodedBatch(
        spans=tables["spans"], logs=tables["logs"], resources=resources,
        attribute_keys=frozenset(keys))


def forget(cur: duckdb.DuckDBPyConnection, moved_through: int) -> None:
    """Delete the exports up to `moved_through` (the store holds them now)."""
    for table in ("requests", *ROW_TABLES):
        cur.execute(f"DELETE FROM {ALIAS}.{table} WHERE seq <= ?", [moved_through])


def waiting(path: Path) -> int:
    """How many acknowledged exports the intake file at `path` holds (0 if there is none, or
    it cannot be read: a reader only warns with this)."""
    if not path.exists():
        return 0
    try:
        with duckdb.connect(str(path), read_only=True) as conn:
            return conn.execute("SELECT count(*) FROM requests").fetchall()[0][0]
    except duckdb.Error:
        return 0
