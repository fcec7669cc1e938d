"""Shipping a store's committed batches to the lake, each span and log once.

Each Iceberg table records, in a table property of its own, the last local batch it holds
from each collector (`tracekit.shipped-through.<collector id>`). A shipment reads the
committed batches after that watermark from the store and appends their rows and the new
watermark in one Iceberg commit: after a crash, the next shipment starts where the last
committed one ended, so nothing is shipped twice or skipped. Concurrent collectors' commits
conflict when they race (Iceberg's optimistic concurrency); pyiceberg retries the loser's
commit on the new snapshot after a random backoff (the table properties in tables.py). Resources are shipped before the rows that name them,
without a watermark (a reader keeps one row per resource_id).
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from tracekit import queries
from tracekit.lake.location import NAMESPACE, LakeLocation
from tracekit.lake.tables import ensure_tables, schemas

log = logging.getLogger(__name__)

WATERMARK = "tracekit.shipped-through."
MAX_ROWS = 50_000           # rows of one table per commit: ~50 MB of Arrow in the collector
ID_SUFFIX = ".lake-id"


def collector_id(db: Path) -> str:
    """This store's name in the lake, kept beside it (`<store>.lake-id`): watermarks are per
    store, since batch ids are."""
    try:
        name = db.with_name(db.name + ID_SUFFIX).read_text().strip()
    except FileNotFoundError:
        name = ""
    return name or new_collector_id(db)


def new_collector_id(db: Path) -> str:
    """A new name for the store, on disk before anything is shipped under it (a power loss
    must not give the store a second name for what it shipped)."""
    path = db.with_name(db.name + ID_SUFFIX)
    name = uuid.uuid4().hex[:16]
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("w") as out:
        out.write(name + "\n")
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return name


class Shipper:
    """Ships the committed batches of the store that `cursor()` reads (a DuckDB cursor)."""

    def __init__(self, location: LakeLocation, db: Path,
                 cursor: Callable[[], duckdb.DuckDBPyConnection], max_rows: int = MAX_ROWS):
        self.location, self.db, self.cursor, self.max_rows = location, db, cursor, max_rows
        self.collector_id = collector_id(db)
        self._catalog = None
        self._arrow_schemas = {name: schema.as_arrow() for name, schema in schemas().items()}
        self._shipped_resources: set[int] = set()
        self.shipped = {"span_rows": 0, "log_rows": 0, "resources": 0}
        self.commits = 0

    def connect(self) -> None:
        """Open the catalog and create the tables if need be. A store that was replaced (its
        batches start again from 1, below what the lake holds of it) gets a new id."""
        catalog = self.location.open_catalog()
        tables = ensure_tables(catalog)
        newest = self._newest_batch()
        if any(self._watermark(table) > newest for table in tables.values()):
            old, self.collector_id = self.collector_id, new_collector_id(self.db)
            log.warning("the lake holds batches of %s (as %s) beyond the %d it has now: the store "
                        "was replaced; shipping it as %s", self.db, old, newest, self.collector_id)
        self._catalog = catalog

    def ship(self, should_stop: Callable[[], bool] = lambda: False) -> int:
        """Ship every batch committed so far, a chunk of rows per commit; the rows shipped."""
        if self._catalog is None:
            self.connect()
        shipped = 0
        while not should_stop():   # a chunk of each table in turn: spans do not hold up logs
            rows = sum(self._ship_chunk(name) for name in ("span_rows", "log_rows"))
            if not rows:
                break
            shipped += rows
        return shipped

    def newest_batch(self) -> int:
        return self._newest_batch()

    def _newest_batch(self) -> int:
        cur = self.cursor()
        try:
            return cur.execute(queries.load("lake/last_batch")).fetchall()[0][0]
        finally:
            cur.close()

    def _watermark(self, table) -> int:
        return int(table.properties.get(WATERMARK + self.collector_id, 0))

    def _ship_chunk(self, name: str) -> int:
        """Ship the next chunk of one table; its rows (0: nothing was left). A commit that
        conflicts with another collector's is retried by pyiceberg on the new snapshot
        (tables.COMMIT_RETRIES); one that still fails raises, and the next shipment starts
        again from the watermark."""
        table = self._catalog.load_table(f"{NAMESPACE}.{name}")
        after = self._watermark(table)
        through, rows, resources = self._read(name, after)
        if through is None or not rows.num_rows:
            return 0
        if resources is not None and resources.num_rows:
            self._catalog.load_table(f"{NAMESPACE}.resources").append(resources)
            self.commits += 1
            self._shipped_resources.update(self._resource_ids(resources))
            self.shipped["resources"] += resources.num_rows
        with table.transaction() as transaction:
            transaction.append(rows)
            transaction.set_properties({WATERMARK + self.collector_id: str(through)})
        self.commits += 1
        self.shipped[name] += rows.num_rows
        log.debug("shipped %d %s (batches %d-%d) to the lake", rows.num_rows, name, after + 1, through)
        return rows.num_rows

    def _read(self, name: str, after: int) -> tuple[int | None, pa.Table | None, pa.Table | None]:
        """The last batch of the next chunk after `after`, its rows, and the resources they
        name that this process has not shipped: read in one transaction of the store."""
        cur = self.cursor()
        try:
            cur.execute("BEGIN TRANSACTION READ ONLY")
            through = cur.execute(queries.load("lake/pending_through"), {
                "after": after, "logs": name == "log_rows", "max_rows": self.max_rows,
            }).fetchall()[0][0]
            if through is None:
                return None, None, None
            rows = cur.sql(queries.load(f"lake/{name}"), params={
                "after": after, "through": through, "collector_id": self.collector_id,
            }).to_arrow_table()
            new = sorted(set(self._resource_ids(rows)) - self._shipped_resources)
            resources = None
            if new:
                resources = cur.sql(queries.load("lake/resources"), params={
                    "ids": new, "collector_id": self.collector_id}).to_arrow_table()
            return (through, rows.cast(self._arrow_schemas[name]),
                    resources.cast(self._arrow_schemas["resources"]) if resources is not None else None)
        finally:
            try:
                cur.execute("ROLLBACK")
            except duckdb.Error:
                pass
            cur.close()

    @staticmethod
    def _resource_ids(rows: pa.Table) -> list[int]:
        ids = pc.unique(rows.column("resource_id")).to_pylist()
        return [int(value) for value in ids if value is not None]
