"""Opening a store: the one place that decides how the DuckDB file is opened.

Reading: `tracekit.open(path)` opens the file read-only with the safe SQL settings. When a
collector holds the file (DuckDB allows one writing process), the reader sends its queries
to that collector's local query endpoint instead and gets Arrow back, so readers see every
acknowledged span while collection goes on.

Writing: `tracekit.open(path, write=True)` is for the one writer (the collector's writer
thread, `tracekit import`); it applies migrations.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from tracekit import discovery, queries
from tracekit.errors import QueryError, StoreLocked, StoreNotFound, StoreTooNew, TracekitError
from tracekit.readonly import SAFE_CONFIG, Cancellation, read_only_statements, run_read_only

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

DEFAULT_PATH = "tracekit.duckdb"
DEFAULT_TIMEOUT_S = 300.0
_LOCK_PID = re.compile(r"PID (\d+)")
log = logging.getLogger(__name__)


class Store(ABC):
    """A read-only view of a store. Queries give DuckDB relations, DataFrames or Arrow."""

    remote = False      # True: read through the collector that holds the file
    lake = False        # True: a lake (tracekit.lake.reader), analyzed by Spark, not by batch

    def __init__(self, path: Path, timeout_s: float | None):
        self.path = path
        self.timeout_s = timeout_s
        self._scratch_conn: duckdb.DuckDBPyConnection | None = None

    @abstractmethod
    def arrow(self, sql: str, params: list | dict | None = None, max_rows: int | None = None,
              cancel: Cancellation | None = None) -> pa.Table:
        """Run a read-only query and return its result (its first `max_rows`) as Arrow;
        `cancel.cancel()` from another thread stops it with QueryCancelled."""

    def df(self, sql: str, params: list | dict | None = None) -> "pd.DataFrame":
        """Run a read-only query and return a pandas DataFrame (VARIANT values as Python)."""
        return self.sql(sql, params).df()

    def sql(self, sql: str, params: list | dict | None = None) -> duckdb.DuckDBPyRelation:
        """Run a read-only query and return a DuckDB relation over its result."""
        return self._scratch().from_arrow(self.arrow(sql, params))

    def rows(self, sql: str, params: list | dict | None = None) -> list[dict]:
        """Run a read-only query and return its rows as dicts of Python values: for small
        results, without importing pyarrow or pandas (a command that reads a few rows starts
        faster)."""
        return self.arrow(sql, params).to_pylist()

    def scalar(self, sql: str, params: list | dict | None = None) -> Any:
        """The first value of the first row, or None."""
        found = self.rows(sql, params)
        return next(iter(found[0].values())) if found else None

    def size_on_disk(self) -> int:
        """Bytes of the store file and its write-ahead log."""
        return sum(p.stat().st_size for p in (self.path, Path(f"{self.path}.wal")) if p.exists())

    def close(self) -> None:
        if self._scratch_conn is not None:
            self._scratch_conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _scratch(self) -> duckdb.DuckDBPyConnection:
        """An in-memory database holding results fetched from elsewhere."""
        if self._scratch_conn is None:
            self._scratch_conn = duckdb.connect(config=dict(SAFE_CONFIG))
        return self._scratch_conn


class LocalStore(Store):
    """The store file opened read-only in this process."""

    def __init__(self, path: Path, conn: duckdb.DuckDBPyConnection, timeout_s: float | None):
        super().__init__(path, timeout_s)
        self.conn = conn

    def arrow(self, sql: str, params: list | dict | None = None, max_rows: int | None = None,
              cancel: Cancellation | None = None) -> pa.Table:
        cur = self.conn.cursor()
        try:
            with cancel.running_on(cur) if cancel else contextlib.nullcontext():
                return run_read_only(cur, sql, params, lambda rel: rel.to_arrow_table(),
                                     self.timeout_s, max_rows)
        finally:
            cur.close()

    def df(self, sql: str, params: list | dict | None = None) -> "pd.DataFrame":
        cur = self.conn.cursor()
        try:
            return run_read_only(cur, sql, params, lambda rel: rel.df(), self.timeout_s)
        finally:
            cur.close()

    def rows(self, sql: str, params: list | dict | None = None) -> list[dict]:
        cur = self.conn.cursor()
        try:
            return run_read_only(cur, sql, params, _as_dicts, self.timeout_s)
        finally:
            cur.close()

    def sql(self, sql: str, params: list | dict | None = None) -> duckdb.DuckDBPyRelation:
        """A lazy relation on the file itself, so callers can chain .filter(), .aggregate()."""
        *before, last = read_only_statements(self.conn, sql)
        try:
            for statement in before:
                self.conn.execute(statement)
            return self.conn.sql(last, params=params)
        except duckdb.Error as exc:
            raise QueryError(str(exc)) from None

    def close(self) -> None:
        super().close()
        self.conn.close()


def _as_dicts(relation: duckdb.DuckDBPyRelation) -> list[dict]:
    names = relation.columns
    return [dict(zip(names, row)) for row in relation.fetchall()]


def open(  # noqa: A001 - the public name users call: tracekit.open(path)
    path: str | os.PathLike = DEFAULT_PATH,
    *,
    write: bool = False,
    timeout_s: float | None = DEFAULT_TIMEOUT_S,
    memory_limit_mib: int | None = None,
    lake: str | None = None,
) -> Store:
    """Open the store at `path`: read-only (the default) or as its one writer; or, with
    `lake` (a lake URI, docs/guides/lake.md), the lake's tables read-only. A reader's
    `memory_limit_mib` caps DuckDB's memory in this process (its buffer pool otherwise keeps
    what it read, up to 80% of the machine)."""
    if lake is not None:
        if write:
            raise TracekitError("the lake is written by collectors (tracekit collect --lake); "
                                "open it without write=True")
        from tracekit.lake.reader import open_lake

        return open_lake(lake, timeout_s, memory_limit_mib)
    path = Path(path)
    if write:
        from tracekit.writable import WritableStore

        return WritableStore.open(path)
    if not path.exists():
        raise StoreNotFound(
            f"no store at {path}: start `tracekit collect --db {path}` or "
            f"`tracekit import --db {path} FILE` first"
        )
    try:
        config = dict(SAFE_CONFIG)
        if memory_limit_mib:
            config["memory_limit"] = f"{int(memory_limit_mib)}MiB"
        conn = duckdb.connect(os.fspath(path), read_only=True, config=config)
    except duckdb.IOException as exc:
        if "lock" not in str(exc).lower():
            raise TracekitError(f"cannot open {path}: {exc}") from None
        endpoint = discovery.find(path)
        if endpoint is None:
            raise StoreLocked(
                f"{path} is open for writing in {holder_of(str(exc))}, which is not a tracekit "
                "collector offering queries. Stop that process, or read a copy of the file."
            ) from None
        from tracekit.remote import RemoteStore

        return RemoteStore(path, endpoint, timeout_s)
    except duckdb.Error as exc:
        raise TracekitError(f"cannot open {path} as a DuckDB store: {exc}") from None
    # A second open of the same file in this process shares the first one's DuckDB instance,
    # whose configuration is already locked (and may not be set again).
    if not conn.execute("SELECT current_setting('lock_configuration')").fetchall()[0][0]:
        conn.execute("SET lock_configuration = true")
    check_version(conn, path)
    from tracekit import intake

    intake_dir = path.with_name(path.name + intake.SUFFIX)
    if intake_dir.is_dir() and (waiting := intake.waiting(intake_dir, conn.execute(
            "SELECT coalesce(max(intake_through), 0) FROM ingest_batches").fetchall()[0][0])):
        log.warning("%d exports a collector acknowledged wait in %s%s, not yet moved into the "
                    "store when it stopped abruptly: queries do not see them until the store is "
                    "next opened for writing (tracekit collect --db %s, or tracekit import), "
                    "which stores them", waiting, path, intake.SUFFIX, path)
    return LocalStore(path, conn, timeout_s)


def holder_of(duckdb_message: str) -> str:
    """'process N' from DuckDB's lock error, or 'another process'."""
    holder = _LOCK_PID.search(duckdb_message)
    return f"process {holder.group(1)}" if holder else "another process"


def check_version(conn: duckdb.DuckDBPyConnection, path: Path) -> int:
    """The store's schema version; refuses a store written by a newer tracekit."""
    known = queries.migrations()[-1][0]
    try:
        version = conn.execute("SELECT max(version) FROM schema_version").fetchall()[0][0]
    except duckdb.CatalogException:
        raise TracekitError(
            f"{path} is a DuckDB file but not a tracekit store (no schema_version table)"
        ) from None
    if version is None:
        raise TracekitError(
            f"{path} has no schema version recorded: its creation was interrupted. Move it "
            "aside and let tracekit create the store again."
        )
    if version > known:
        raise StoreTooNew(
            f"{path} has schema version {version}; this tracekit knows up to {known}. "
            "Upgrade tracekit (pip install -U tracekit)."
        )
    return version
