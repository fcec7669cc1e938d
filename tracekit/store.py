"""Opening a store: the one place that decides how the DuckDB file is opened.

Reading: `tracekit.open(path)` opens the file read-only with the safe SQL settings. When a
collector holds the file (DuckDB allows one writing process), the reader sends its queries
to that collector's local query endpoint instead and gets Arrow back, so readers see every
acknowledged span while collection goes on.

Writing: `tracekit.open(path, write=True)` is for the one writer (the collector's writer
thread, `tracekit import`); it applies migrations.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import duckdb

from tracekit import discovery, intake
from tracekit.errors import StoreLocked, StoreNotFound, TracekitError
from tracekit.opening import check_version, holder_of, intake_path
from tracekit.readonly import SAFE_CONFIG
from tracekit.reading import LocalStore, Store

DEFAULT_PATH = "tracekit.duckdb"
DEFAULT_TIMEOUT_S = 300.0
log = logging.getLogger(__name__)

__all__ = ["DEFAULT_PATH", "DEFAULT_TIMEOUT_S", "LocalStore", "Store", "open"]


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
    intake_dir = intake_path(path)
    if intake_dir.is_dir() and (waiting := intake.waiting(intake_dir, conn.execute(
            "SELECT coalesce(max(intake_through), 0) FROM ingest_batches").fetchall()[0][0])):
        log.warning("%d exports a collector acknowledged wait in %s%s, not yet moved into the "
                    "store when it stopped abruptly: queries do not see them until the store is "
                    "next opened for writing (tracekit collect --db %s, or tracekit import), "
                    "which stores them", waiting, path, intake.SUFFIX, path)
    return LocalStore(path, conn, timeout_s)
