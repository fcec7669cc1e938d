"""Stores whose analysis tables are current: brought up to date by the one writer of a file
(`tracekit analyze`, `tracekit import`, a reader finding the file free), or left to the
collector that holds it, which keeps them current as it commits."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from tracekit.analysis import DEFAULT_BUSINESS_KEYS
from tracekit.errors import TracekitError

Progress = Callable[[int, int], None]     # (spans done, spans to do)
# DuckDB's share of an analysis run's memory (its buffer pool otherwise grows to 80% of the
# machine as the store is read); the chunks' analysis in Python takes about as much again.
DUCKDB_MEMORY_MIB = 512
# ... and of a command reading the analysis (a window of it: DuckDB only caches what it read).
READER_DUCKDB_MEMORY_MIB = 512


def bring_up_to_date(path: str | os.PathLike, *, rebuild: bool = False,
                     on_progress: Progress | None = None,
                     should_stop: Callable[[], bool] | None = None,
                     business_keys: tuple[str, ...] = DEFAULT_BUSINESS_KEYS):
    """Open the store for writing and analyze what its tables lack (everything, with
    `rebuild`), stopping between chunks once `should_stop()` (each chunk commits); returns the
    persist.UpdateResult. Raises StoreLocked when a process holds it."""
    from tracekit.analysis import persist
    from tracekit.writable import WritableStore

    store = WritableStore.open(Path(path), memory_limit_mib=DUCKDB_MEMORY_MIB)
    try:
        run = persist.rebuild if rebuild else persist.update
        return run(store.conn, business_keys=business_keys, on_progress=on_progress,
                   should_stop=should_stop)
    finally:
        store.close()


def behind(store) -> int | None:
    """Spans the analysis tables of a read-only store lack; None for a store written before
    they existed. A lake's analysis is as of its last Spark run: 0."""
    from tracekit.errors import QueryError

    if store.lake:
        return 0

    try:
        return int(store.scalar(
            "SELECT coalesce(sum(spans), 0) FROM ingest_batches WHERE batch_id > "
            "(SELECT coalesce(max(analyzed_through), 0) FROM analysis_progress)"))
    except QueryError:
        return None


def open_analyzed(path: str | os.PathLike, *, timeout_s: float | None = None,
                  on_progress: Progress | None = None, on_start: Callable[[int], None] | None = None,
                  memory_limit_mib: int | None = READER_DUCKDB_MEMORY_MIB):
    """The store at `path`, read-only, with its analysis tables current. A collector holding
    the file keeps them current itself; otherwise the spans they lack are analyzed first
    (`on_start(spans)` is told how many), which needs the file to be writable.
    `memory_limit_mib`: DuckDB's memory in this process (None: DuckDB's default)."""
    import tracekit
    from tracekit.store import DEFAULT_TIMEOUT_S

    timeout_s = DEFAULT_TIMEOUT_S if timeout_s is None else timeout_s
    store = tracekit.open(path, timeout_s=timeout_s, memory_limit_mib=memory_limit_mib)
    if store.remote:        # the collector holding the file keeps its analysis current
        return store
    lacking = behind(store)
    if lacking == 0:
        return store
    store.close()
    if on_start is not None:
        on_start(lacking or 0)
    try:
        bring_up_to_date(path, on_progress=on_progress)
    except PermissionError as exc:
        raise TracekitError(f"the analysis of {path} is not up to date, and this user cannot "
                            f"write the file to update it ({exc}): run `tracekit analyze --db "
                            f"{path}` as its owner") from None
    return tracekit.open(path, timeout_s=timeout_s, memory_limit_mib=memory_limit_mib)
