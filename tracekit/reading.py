"""The read-only view of a store (`Store`), and the store file opened read-only in this
process (`LocalStore`); `tracekit.store.open` decides which one a caller gets."""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from tracekit.errors import QueryError
from tracekit.readonly import SAFE_CONFIG, Cancellation, read_only_statements, run_read_only

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa


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
