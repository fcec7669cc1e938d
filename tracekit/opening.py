"""Opening a store file: the writer's connection, the schema (its migrations, and the version
check that refuses a newer store, for readers too), the intake beside it, and who holds its
lock. The route of a span through the writer is in docs/design/collector.md."""

from __future__ import annotations

import os
import re
from pathlib import Path

import duckdb

from tracekit import intake, queries
from tracekit.checkpoints import CHECKPOINT_THRESHOLD
from tracekit.errors import StoreLocked, StoreTooNew, TracekitError
from tracekit.readonly import SAFE_CONFIG

_LOCK_PID = re.compile(r"PID (\d+)")


def connect_for_writing(path: Path, threads: int | None,
                        memory_limit_mib: int | None) -> duckdb.DuckDBPyConnection:
    """The writer's connection to the store file (created if need be), with its settings."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if intake_path(path).is_file():
        raise TracekitError(
            f"{intake_path(path)} is the intake of an earlier tracekit build (a DuckDB file); "
            "this build keeps a directory there. Open the store once with that build to move "
            "what it holds, or move the file away (its exports are then not stored).")
    try:
        conn = duckdb.connect(os.fspath(path), config=dict(SAFE_CONFIG))
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise StoreLocked(
                f"{path} is open in {holder_of(str(exc))}: a store takes one writer (a "
                "collector or an import) and no other process, not even a reader, while it "
                "writes. Stop or close that process, or use another --db."
            ) from None
        raise TracekitError(f"cannot open {path} for writing: {exc}") from None
    except duckdb.Error as exc:
        raise TracekitError(f"cannot open {path} as a DuckDB store: {exc}") from None
    # DuckDB checkpoints when the write-ahead log reaches this size, inside the commit that
    # crossed it (for large commits; before a small one the writer raises it and decides
    # itself: `tracekit.checkpoints`). At DuckDB's default, 16 MiB, every ~24k spans each
    # checkpoint rewrote (and re-shredded) the last row group, and ingest fell to a third. At 128 MiB (~190k spans) the uncheckpointed rows filled the
    # 128 MiB a collector gives DuckDB, the checkpoint could not allocate, and DuckDB
    # invalidated the database (seen at ~40k spans/s after ~1M spans).
    conn.execute(f"SET checkpoint_threshold = '{CHECKPOINT_THRESHOLD}'")
    # DuckDB draws a progress bar on stdout for statements past 2 s (a migration of a large
    # store): it would go into `tracekit import --json` and the collector's output.
    conn.execute("SET enable_progress_bar = false")
    if memory_limit_mib:
        # DuckDB's buffer pool otherwise grows to 80% of the machine's memory: rows not
        # yet checkpointed and cached blocks beyond this go to the file or a temp file.
        conn.execute(f"SET memory_limit = '{int(memory_limit_mib)}MiB'")
    if threads:
        conn.execute(f"SET threads = {int(threads)}")
    # The writer's configuration stays unlocked: it turns VARIANT shredding off and on as
    # it commits (`CheckpointPolicy`). The SQL it answers for readers is refused unless it
    # is a SELECT (`tracekit.readonly`), so no reader can SET anything.
    return conn


def migrate(conn: duckdb.DuckDBPyConnection) -> int:
    """Apply every migration the store lacks, each in its own transaction."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_version ("
        "version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
    )
    current = conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchall()[0][0]
    for version, name, sql in queries.migrations():
        if version <= current:
            continue
        conn.execute("BEGIN")
        try:
            conn.execute(sql)
            conn.execute("INSERT INTO schema_version VALUES (?, ?, now())", [version, name])
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        current = version
    return current


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


def holder_of(duckdb_message: str) -> str:
    """'process N' from DuckDB's lock error, or 'another process'."""
    holder = _LOCK_PID.search(duckdb_message)
    return f"process {holder.group(1)}" if holder else "another process"


def intake_path(path: Path) -> Path:
    """The intake (a directory of log segments) of the store at `path`."""
    return path.with_name(path.name + intake.SUFFIX)
