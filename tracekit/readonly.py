"""The read-only SQL surface: which statements run, and a timeout for runaway queries."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import duckdb

from tracekit.errors import QueryCancelled, QueryError, ReadOnlyViolation

# DuckDB settings for every connection that runs SQL typed by a person: no files, no
# network, no extensions, and nobody can switch these back on.
SAFE_CONFIG = {
    "enable_external_access": False,
    "autoload_known_extensions": False,
    "autoinstall_known_extensions": False,
}

_ALLOWED = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}

T = TypeVar("T")


def read_only_statements(conn: duckdb.DuckDBPyConnection, sql: str) -> list[str]:
    """Split SQL into statements, refusing any that is not a query.

    SHOW, DESCRIBE, SUMMARIZE and FROM-first queries are SELECTs to DuckDB's parser.
    """
    try:
        statements = conn.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryError(str(exc)) from None
    if not statements:
        raise QueryError("empty query: give a SELECT statement, e.g. SELECT count(*) FROM spans")
    for statement in statements:
        if statement.type not in _ALLOWED:
            kind = statement.type.name
            raise ReadOnlyViolation(
                f"tracekit SQL is read-only: {kind} statements are refused. "
                "Use SELECT (or SHOW, DESCRIBE, SUMMARIZE, EXPLAIN) to read the store."
            )
    return [statement.query for statement in statements]


@contextmanager
def interrupt_after(conn: duckdb.DuckDBPyConnection, seconds: float | None) -> Iterator[None]:
    """Interrupt whatever `conn` runs once `seconds` have passed."""
    if not seconds:
        yield
        return
    fired = threading.Event()

    def stop() -> None:
        fired.set()
        conn.interrupt()

    timer = threading.Timer(seconds, stop)
    timer.daemon = True
    timer.start()
    try:
        yield
    except duckdb.InterruptException:
        if fired.is_set():
            raise QueryError(
                f"query stopped after the {seconds:g} s timeout; narrow it (a WHERE on "
                "start_time, a LIMIT) or raise the timeout with --timeout"
            ) from None
        raise
    finally:
        timer.cancel()


class Cancellation:
    """Lets another thread stop a query: `cancel()` interrupts the connection it runs on (or
    stops it before it starts); the query then raises QueryCancelled."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._conn: duckdb.DuckDBPyConnection | None = None
        self.cancelled = False

    @property
    def started(self) -> bool:
        """The query runs on a connection now."""
        return self._conn is not None

    def cancel(self) -> None:
        with self._lock:
            self.cancelled = True
            if self._conn is not None:
                self._conn.interrupt()

    @contextmanager
    def running_on(self, conn: duckdb.DuckDBPyConnection) -> Iterator[None]:
        with self._lock:
            if self.cancelled:
                raise QueryCancelled("query cancelled before it started")
            self._conn = conn
        try:
            yield
        except duckdb.InterruptException:
            if self.cancelled:
                raise QueryCancelled("query cancelled") from None
            raise
        finally:
            with self._lock:
                self._conn = None


def run_read_only(
    conn: duckdb.DuckDBPyConnection,
    sql: str,
    params: list | dict | None,
    fetch: Callable[[duckdb.DuckDBPyRelation], T],
    timeout_s: float | None,
    max_rows: int | None = None,
) -> T:
    """Run every statement of `sql` on `conn`; `fetch` reads the last one's relation,
    cut to `max_rows` rows when given (the limit reaches the query plan)."""
    statements = read_only_statements(conn, sql)
    with interrupt_after(conn, timeout_s):
        # A READ ONLY transaction is the guarantee: EXPLAIN ANALYZE, for one, runs the
        # statement it explains, whatever that statement is.
        conn.execute("BEGIN TRANSACTION READ ONLY")
        try:
            for statement in statements[:-1]:
                conn.execute(statement)
            relation = conn.sql(statements[-1], params=params)
            if max_rows is not None and relation is not None:
                relation = relation.limit(max_rows)
            return fetch(relation)
        except duckdb.InterruptException:
            raise
        except duckdb.Error as exc:
            raise QueryError(str(exc)) from None
        finally:
            try:
                conn.execute("ROLLBACK")
            except duckdb.Error:
                pass
