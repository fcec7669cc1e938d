"""When the writer folds DuckDB's log into the file (checkpoints), and whether rows are shredded.

The writer commits small transactions (a collector's moves) and large ones (an import's);
this policy sets DuckDB's settings before each commit and, after it, says whether a
checkpoint is due. docs/design/collector.md (Checkpoints) tells why each rule is there.
"""

from __future__ import annotations

import logging
from pathlib import Path

import duckdb

log = logging.getLogger(__name__)


# DuckDB's rows per row group: the unit it compresses, and shreds VARIANT columns in, when it
# checkpoints. Once this many rows have come in small commits since the last checkpoint, the
# writer checkpoints, so each row group is written whole, once (`after_commit`).
ROW_GROUP_ROWS = 122_880
# DuckDB's own trigger, by the size of its log, for large commits (an import's): DuckDB then writes their rows straight into the file (~680 B of log per span).
CHECKPOINT_THRESHOLD = "96MiB"
# ... and for small commits, set before each one (`_choose_log_limit`): far above a row group.
# DuckDB logs a fixed ~17 KiB per commit for each VARIANT column, so a 512-span commit (an SDK's
# batch) logs 1,130 B a span and a 16-span commit 10 KB, though each span takes the same ~830 B
# of memory: at 96 MiB, DuckDB's trigger fired every ~89k spans of 512-span commits, cut row
# groups short and rewrote them, and left the file half free blocks (112 B a span against 62).
# The writer's own rules below decide instead; this only bounds the log on disk.
SMALL_COMMITS_LOG_LIMIT = "512MiB"
# Uncheckpointed rows live in the writer's memory (128 MiB in a collector by default): rows
# larger than usual are checkpointed once this many bytes of them (as decoded Arrow, which
# DuckDB holds in ~1.6 times as much) have come in small commits, per 128 MiB of DuckDB memory.
UNCHECKPOINTED_BYTES_PER_128_MIB = 64 * 2**20
# Shredding a row group's attribute maps into typed columns (what makes
# `attributes['order.id'] = ?` take milliseconds on millions of spans) takes DuckDB memory in
# proportion to the distinct keys in it: a row group of spans with 140 distinct keys (20 per
# span) could not be shredded in 128 MiB, and DuckDB invalidated the database; 100 could. Rows
# with more distinct keys than this, per 128 MiB the writer's DuckDB has, are stored
# unshredded: slower to search by attribute, but stored.
SHREDDED_KEYS_PER_128_MIB = 64
SHRED_FROM_ROWS = 30_000   # DuckDB's variant_minimum_shredding_size: a quarter of a row group
SMALL_COMMIT_ROWS = ROW_GROUP_ROWS // 8   # a collector's commits; larger ones are an import's


class CheckpointPolicy:
    """The writer's checkpoint and shredding rules, and what waits for the next checkpoint."""

    def __init__(self, path: Path, memory_limit_mib: int | None):
        self.path = path
        self.memory_limit_mib = memory_limit_mib
        # The most distinct span attribute keys DuckDB can shred in its memory (None: no limit).
        self.max_shredded_keys: int | None = (
            SHREDDED_KEYS_PER_128_MIB * int(memory_limit_mib) // 128 if memory_limit_mib else None)
        # The bytes of rows from small commits that make the writer checkpoint (see above).
        self.max_uncheckpointed_bytes = UNCHECKPOINTED_BYTES_PER_128_MIB * int(memory_limit_mib or 128) // 128
        self._warned_unshredded = False
        # The checkpoints the writer ran after commits, and the time they took: what bounds
        # ingest is the writer thread, and these are most of it
        # (benchmarks/results/2026-11-28-and-29.md).
        self.checkpoints = 0
        self.checkpoint_s = 0.0

    def connected(self, conn: duckdb.DuckDBPyConnection) -> None:
        """A connection opened (or reopened): fold a replayed log, and start from its settings."""
        self._fold_replayed_log(conn)
        # The DuckDB settings the writer changes before commits, as they are now.
        self._settings = {"variant_minimum_shredding_size": str(SHRED_FROM_ROWS),
                          "checkpoint_threshold": f"'{CHECKPOINT_THRESHOLD}'"}
        self.checkpointed()

    def checkpointed(self) -> None:
        """Nothing waits for a checkpoint: no rows committed since, and so none of their span
        attribute keys; the log's size now, to tell when DuckDB checkpoints by itself."""
        self._uncheckpointed = {"spans": 0, "logs": 0}
        self._uncheckpointed_bytes = 0
        self.due = False
        self._pending_keys: set[str] = set()
        self._wal_before = self._wal_bytes()

    def _fold_replayed_log(self, conn: duckdb.DuckDBPyConnection) -> None:
        """A log left by a crash, or by a database DuckDB gave up, has been replayed into
        memory. Its rows' attribute keys are unknown, so with a memory limit they are folded
        into the file unshredded before anything else is written (see _choose_shredding)."""
        if not self.memory_limit_mib or not self._wal_bytes():
            return
        conn.execute("SET variant_minimum_shredding_size = -1")
        conn.execute("CHECKPOINT")
        conn.execute(f"SET variant_minimum_shredding_size = {SHRED_FROM_ROWS}")

    def before_commit(self, cur: duckdb.DuckDBPyConnection, attribute_keys: frozenset[str],
                      small: bool) -> None:
        """DuckDB's settings for the commit (which may write row groups, or checkpoint)."""
        self._choose_shredding(cur, len(self._pending_keys | attribute_keys))
        self._choose_log_limit(cur, small)

    def after_commit(self, spans: int, logs: int, nbytes: int, attribute_keys: frozenset[str],
                     small: bool = True) -> None:
        """Count the rows a commit put in DuckDB's log; after small commits, as a collector's
        moves are, a checkpoint is due once a row group's worth of them (or of memory, for
        rows larger than usual) waits there, and the caller runs it once no transaction of
        its own is open. A large commit (an import's) is left to DuckDB's own trigger, which
        then writes the commit's rows straight into the file instead of into the log first
        (50k-span commits: 80k spans/s against 57k)."""
        self._pending_keys = self._pending_keys | attribute_keys
        wal = self._wal_bytes()
        if wal < self._wal_before:   # DuckDB checkpointed inside the commit
            self.checkpointed()
        self._wal_before = wal
        self._uncheckpointed["spans"] += spans
        self._uncheckpointed["logs"] += logs
        self._uncheckpointed_bytes += nbytes
        if small and (max(self._uncheckpointed.values()) >= ROW_GROUP_ROWS
                      or self._uncheckpointed_bytes >= self.max_uncheckpointed_bytes):
            self.due = True

    def _wal_bytes(self) -> int:
        try:
            return wal_path(self.path).stat().st_size
        except OSError:
            return 0

    def _choose_log_limit(self, cur: duckdb.DuckDBPyConnection, small: bool) -> None:
        """Before a commit (which may checkpoint): DuckDB's log-size trigger for its size."""
        limit = SMALL_COMMITS_LOG_LIMIT if small else CHECKPOINT_THRESHOLD
        self._set(cur, "checkpoint_threshold", f"'{limit}'")

    def _choose_shredding(self, cur: duckdb.DuckDBPyConnection, keys: int) -> None:
        """Before a commit (which may checkpoint): shred the rows waiting for a checkpoint only
        if DuckDB can hold their `keys` distinct attribute keys as typed columns."""
        shred = self.max_shredded_keys is None or keys <= self.max_shredded_keys
        self._set(cur, "variant_minimum_shredding_size", str(SHRED_FROM_ROWS if shred else -1))
        if not shred and not self._warned_unshredded:
            self._warned_unshredded = True
            log.warning("spans with %d distinct attribute keys since the last checkpoint: more than "
                        "DuckDB can shred into typed columns in its memory (%d keys at most), so "
                        "they are stored unshredded and searching them by attribute scans them; a "
                        "larger --memory-limit shreds more", keys, self.max_shredded_keys)

    def _set(self, cur: duckdb.DuckDBPyConnection, name: str, value: str) -> None:
        """SET a DuckDB setting, unless it has that value already."""
        if self._settings[name] != value:
            cur.execute(f"SET {name} = {value}")
            self._settings[name] = value


def wal_path(path: Path) -> Path:
    """DuckDB's write-ahead log of the database file at `path`."""
    return path.with_name(path.name + ".wal")
