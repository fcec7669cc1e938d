"""The store's one writer: migrations and appending decoded batches in a transaction."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tracekit import intake, queries
from tracekit.errors import StoreLocked, TracekitError
from tracekit.otlp.batches import DecodedBatch, concat, resource_table, split, stream
from tracekit.resent_logs import new_records, with_record_keys
from tracekit.readonly import SAFE_CONFIG
from tracekit.store import check_version, holder_of
from tracekit.threads import name_os_thread

log = logging.getLogger(__name__)


# DuckDB's rows per row group: the unit it compresses, and shreds VARIANT columns in, when it
# checkpoints. Once this many rows have come in small commits since the last checkpoint, the
# writer checkpoints, so each row group is written whole, once (`_after_commit`).
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


@dataclass
class _Staged:
    """A transaction of the writer's, open: what has been inserted in it so far."""

    cur: duckdb.DuckDBPyConnection
    spans: int = 0
    logs: int = 0
    duplicates: int = 0            # re-sent spans left out
    span_bytes: int = 0            # as decoded Arrow
    log_bytes: int = 0
    batches: int = 0               # batch rows (ids from the store's next one on)
    resources: set[int] = field(default_factory=set)        # inserted in it
    new_keys: set[str] = field(default_factory=set)         # registered in it
    attribute_keys: frozenset[str] = frozenset()            # of its spans
    moved_through: int | None = None   # the last intake export it holds whole
    # A transaction that was committing when this one began, whose rows this one does not
    # see; and the (trace_id, span_id, start_time) of the spans inserted here, and the keys
    # of the logs, for the next.
    unseen: _Staged | None = None
    keys: list[pa.Table] = field(default_factory=list)
    log_keys: list[np.ndarray] = field(default_factory=list)   # `record_key`s of its logs
    _sorted_starts: np.ndarray | None = None

    def sorted_start_times(self) -> np.ndarray:
        """The start times of its spans as sorted integers (ns), once all are inserted."""
        if self._sorted_starts is None:
            self._sorted_starts = np.sort(np.concatenate([np.empty(0, np.int64)] + [
                table.column("start_time").cast(pa.int64()).to_numpy() for table in self.keys]))
        return self._sorted_starts


@dataclass(frozen=True)
class AppendResult:
    """What one committed append wrote."""

    batch_id: int
    spans: int
    logs: int
    duplicates: int


class WritableStore:
    """The store opened read-write by the single writing process.

    External access is off even here: the collector answers read-only queries on this same
    database, and nothing it writes comes from files.
    """

    def __init__(self, path: Path, conn: duckdb.DuckDBPyConnection, threads: int | None = None,
                 memory_limit_mib: int | None = None):
        self.path = path
        self.conn = conn
        self._threads, self._memory_limit_mib = threads, memory_limit_mib
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
        # Transactions committed, and the spans, logs and re-sent spans (left out) in them.
        self.commits = 0
        self.stored = {"spans": 0, "logs": 0, "duplicates": 0}
        self._broken = False   # DuckDB gave up the database and reopening it failed
        # The open transaction of moves (`stage`), if any, and the one committing in the
        # committer thread; only the mover's thread uses them.
        self._staged: _Staged | None = None
        self._committing: tuple[_Staged, Future] | None = None
        self._committer: ThreadPoolExecutor | None = None
        self.on_background_commit: Callable[[], None] | None = None   # called in that thread
        # The log of acknowledged exports (`accept`), which `move` brings into the tables.
        self.intake = intake.Intake(intake_path(path))
        self._load_state()
        # Set once: the intake thread numbers exports from here on, also while `_reopen`
        # reloads the rest.
        self._next_seq = max(self.moved_through, self.intake.last_seq or 0) + 1

    def _load_state(self) -> None:
        conn = self.conn
        self._next_batch = conn.execute(
            "SELECT coalesce(max(batch_id), 0) + 1 FROM ingest_batches"
        ).fetchall()[0][0]
        self._known_resources = {row[0] for row in conn.execute("SELECT resource_id FROM resources").fetchall()}
        self._known_attribute_keys = {
            row[0] for row in conn.execute("SELECT key FROM span_attribute_keys").fetchall()}
        self._fold_replayed_log()
        self.moved_through = conn.execute(
            "SELECT coalesce(max(intake_through), 0) FROM ingest_batches").fetchall()[0][0]
        # The DuckDB settings the writer changes before commits, as they are now.
        self._settings = {"variant_minimum_shredding_size": str(SHRED_FROM_ROWS),
                          "checkpoint_threshold": f"'{CHECKPOINT_THRESHOLD}'"}
        self._checkpointed()

    def _checkpointed(self) -> None:
        """Nothing waits for a checkpoint: no rows committed since, and so none of their span
        attribute keys; the log's size now, to tell when DuckDB checkpoints by itself."""
        self._uncheckpointed = {"spans": 0, "logs": 0}
        self._uncheckpointed_bytes = 0
        self._checkpoint_due = False
        self._pending_keys: set[str] = set()
        self._wal_before = self._wal_bytes()

    def _fold_replayed_log(self) -> None:
        """A log left by a crash, or by a database DuckDB gave up, has been replayed into
        memory. Its rows' attribute keys are unknown, so with a memory limit they are folded
        into the file unshredded before anything else is written (see _choose_shredding)."""
        if not self._memory_limit_mib or not self._wal_bytes():
            return
        self.conn.execute("SET variant_minimum_shredding_size = -1")
        self.conn.execute("CHECKPOINT")
        self.conn.execute(f"SET variant_minimum_shredding_size = {SHRED_FROM_ROWS}")

    @classmethod
    def open(cls, path: Path, threads: int | None = None,
             memory_limit_mib: int | None = None) -> WritableStore:
        """Open (creating and migrating) the store; `threads` caps DuckDB's worker threads,
        `memory_limit_mib` its memory."""
        conn = cls._connect(path, threads, memory_limit_mib)
        try:
            migrate(conn)
            check_version(conn, path)
            store = cls(path, conn, threads, memory_limit_mib)
        except BaseException:
            conn.close()
            raise
        store.move_all()   # what a collector acknowledged before it stopped abruptly
        return store

    @staticmethod
    def _connect(path: Path, threads: int | None, memory_limit_mib: int | None) -> duckdb.DuckDBPyConnection:
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
        # itself, see `_choose_log_limit` and `_after_commit`). At DuckDB's default, 16 MiB,
        # every ~24k spans each checkpoint rewrote (and re-shredded) the last row group, and
        # ingest fell to a third. At 128 MiB (~190k spans) the uncheckpointed rows filled the
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
        # it commits (`_choose_shredding`). The SQL it answers for readers is refused unless it
        # is a SELECT (`tracekit.readonly`), so no reader can SET anything.
        return conn

    def _reopen(self, reason: str) -> None:
        """DuckDB gave up the database after a fatal error (it refuses every statement from
        then on): open it again, which replays its log, so every committed batch is kept and
        the collector goes on without a restart. If that fails, the next append tries again."""
        log.error("DuckDB gave up the database after an error (%s); reopening it (its log "
                  "replays every committed batch)", reason)
        self._roll_back_staged()
        try:
            self.conn.close()
        except duckdb.Error:
            pass
        try:
            self.conn = self._connect(self.path, self._threads, self._memory_limit_mib)
            self._load_state()
        except (duckdb.Error, TracekitError) as reopen_exc:
            self._broken = True
            log.error("reopening %s failed (the next write tries again): %s", self.path, reopen_exc)
        else:
            self._broken = False

    def warm_up(self) -> None:
        """Write one span and one log the way an export does, and roll it back: the first
        export otherwise paid ~0.6 s for pyarrow's compute kernels and DuckDB's first
        conversions."""
        from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        from tracekit.otlp.decode import decode_logs, decode_traces

        traces = ExportTraceServiceRequest()
        span = traces.resource_spans.add().scope_spans.add().spans.add()
        span.trace_id, span.span_id, span.name = b"\x01" * 16, b"\x01" * 8, "warm-up"
        span.attributes.add(key="k").value.string_value = "v"
        logs = ExportLogsServiceRequest()
        logs.resource_logs.add().scope_logs.add().log_records.add().body.string_value = "warm-up"
        self.append(concat([decode_traces(traces), decode_logs(logs)]), "warm-up", rollback=True)

    def append(self, batch: DecodedBatch, source: str, rollback: bool = False) -> AppendResult:
        """Write the batch's resources, spans and logs in one transaction and commit it (or,
        with `rollback`, undo it: nothing is kept). Moves from the intake are `stage`d."""
        return self._writing(lambda: self._append(batch, source, rollback))

    def _writing(self, write):
        """Run `write`; if DuckDB gives the database up meanwhile, reopen it and raise."""
        if self._broken:
            self._reopen("an earlier reopening failed")
            if self._broken:
                raise TracekitError(f"{self.path} could not be reopened after DuckDB gave it up; "
                                    "see the log, and retry")
        try:
            return write()
        except duckdb.FatalException as exc:
            self._reopen(first_line(exc))
            raise

    def accept(self, batches: list[tuple[DecodedBatch, str]]) -> intake.Accepted:
        """Append exports (each with its source) to the intake and sync it: once this returns
        they are acknowledged. `move` brings them into the store's tables. Called by one
        thread (the writer's intake thread) at a time; it touches no DuckDB state."""
        accepted = self.intake.append(self._next_seq, batches)
        self._next_seq = accepted.last_seq + 1
        return accepted

    def move(self, exports: Sequence[intake.Export]) -> AppendResult:
        """Append acknowledged exports, the oldest not yet stored, and commit them with what
        was staged before (`stage`)."""
        result = self.stage(exports)
        self.commit_staged()
        return result

    def stage(self, exports: Sequence[intake.Export]) -> AppendResult:
        """Append acknowledged exports, the oldest not yet stored, to the open transaction of
        moves (begun if there is none), and commit it whenever it holds a whole row group of
        spans or of logs, cutting an export at the row group's end if need be: DuckDB then
        writes the row group straight into the file, compressed and shredded once, and logs
        only where it is (docs/design/collector.md: Moves). Each commit records the last export
        it holds whole (`intake_through`) and deletes the intake segments the store now holds.
        If anything fails, the open transaction is rolled back (`moved_through` says what is
        stored) and the error raised."""
        return self._writing(lambda: self._stage(exports))

    def commit_staged(self) -> None:
        """Commit the open transaction of moves, and wait for the one committing in the
        background, if any (a reader waits for them, or the writer stops)."""
        if self._staged is not None or self._committing is not None:
            self._writing(self._commit_staged)

    @property
    def staging(self) -> bool:
        """Whether moves are staged and not yet known to be committed."""
        return self._staged is not None or self._committing is not None

    @property
    def committed_in_background(self) -> bool:
        """Whether the commit in the committer thread has ended (`settle` takes it in)."""
        return self._committing is not None and self._committing[1].done()

    def settle(self) -> None:
        """Take in the commit in the committer thread, waiting for it if need be. If it
        failed, the open transaction is rolled back too (it comes after it) and the error
        raised: `moved_through` says what is stored."""
        try:
            self._writing(self._await_committing)
        except BaseException:
            self._roll_back_staged()
            raise

    def _stage(self, exports: Sequence[intake.Export]) -> AppendResult:
        spans = logs = duplicates = 0
        pending = list(exports)
        try:
            while pending:
                staged = self._staged or self._begin()
                room_spans, room_logs = ROW_GROUP_ROWS - staged.spans, ROW_GROUP_ROWS - staged.logs
                whole: list[intake.Export] = []
                for export in pending:
                    if export.batch.span_count > room_spans or export.batch.log_count > room_logs:
                        break
                    whole.append(export)
                    room_spans -= export.batch.span_count
                    room_logs -= export.batch.log_count
                through, batches = (whole[-1].seq if whole else None), [e.batch for e in whole]
                del pending[:len(whole)]
                if pending:   # the next export crosses the end of a row group: cut it there
                    head, tail = split(pending[0].batch, room_spans, room_logs)
                    batches.append(head)
                    pending[0] = intake.Export(pending[0].seq, tail, pending[0].source)
                result = self._insert(staged, concat(batches), _source(exports), through)
                spans, logs, duplicates = (spans + result.spans, logs + result.logs,
                                           duplicates + result.duplicates)
                # However large its rows, a transaction holds a row group: DuckDB spills what
                # it stages beyond its memory to a temporary file (in one process, 245,760
                # spans with 2 KiB attributes, 128 MiB: 34k spans/s, where committing them
                # to the log by their size and checkpointing gave 16k, in the same memory).
                if staged.spans >= ROW_GROUP_ROWS or staged.logs >= ROW_GROUP_ROWS:
                    self._hand_over()
        except BaseException:
            self._roll_back_staged()
            raise
        return AppendResult(self._next_batch, spans, logs, duplicates)

    def _begin(self) -> _Staged:
        if self._checkpoint_due:   # rows in DuckDB's log make a row group: fold them first
            self._await_committing()
            self._checkpoint_committed()
        cur = self.conn.cursor()
        cur.execute("BEGIN")
        # A transaction committing meanwhile is not seen by this one: its spans and logs are
        # checked against this one's by key instead (`_insert`).
        self._staged = _Staged(cur, unseen=self._committing[0] if self._committing else None)
        return self._staged

    def _hand_over(self) -> None:
        """Commit the open transaction, which holds a whole row group, in the committer
        thread: DuckDB writes the row group (compressing it and shredding its attribute maps,
        most of a move's time) while the mover stages the next on the other core."""
        staged, self._staged = self._staged, None
        try:
            self._await_committing()   # one at a time, in order
            self._before_commit(staged.cur, staged.attribute_keys, small=True)
        except BaseException:
            self._staged = staged
            raise
        self._claim(staged)
        staged.unseen = None   # all inserted: what it did not see no longer matters
        if self._committer is None:
            self._committer = ThreadPoolExecutor(1, thread_name_prefix="tracekit-commit",
                                                 initializer=name_os_thread)
        future = self._committer.submit(staged.cur.execute, "COMMIT")
        if self.on_background_commit is not None:
            future.add_done_callback(lambda _: self.on_background_commit())
        self._committing = (staged, future)

    def _await_committing(self) -> None:
        """Wait for the transaction committing in the background, if any, and take what it
        stored into account; raise what its commit raised."""
        if self._committing is None:
            return
        (staged, future), self._committing = self._committing, None
        try:
            future.result()
        except BaseException:
            self._reload_claims()
            raise
        finally:
            staged.cur.close()
        self._stored(staged)

    def _commit_staged(self) -> None:
        staged, self._staged = self._staged, None
        try:
            self._await_committing()
            if staged is None:
                return
            self._before_commit(staged.cur, staged.attribute_keys, small=True)
            staged.cur.execute("COMMIT")
        except BaseException:
            self._staged = staged
            self._roll_back_staged()
            raise
        staged.cur.close()
        staged.unseen = None
        self._claim(staged)
        self._stored(staged)
        if self._checkpoint_due:
            self._checkpoint_committed()

    def _roll_back_staged(self) -> None:
        """Roll back the open transaction, and settle the one committing in the background
        (stored if its commit went through). Raises nothing."""
        staged, self._staged = self._staged, None
        if staged is not None:
            try:
                staged.cur.execute("ROLLBACK")
            except duckdb.Error:
                pass
            staged.cur.close()
        try:
            self._await_committing()
        except BaseException as exc:
            log.warning("a commit of moves failed (its exports stay in the intake): %s",
                        first_line(exc))

    def _claim(self, staged: _Staged) -> None:
        """A transaction about to commit: its resources, attribute keys and batch ids count
        as taken, for the transaction after it."""
        self._known_resources.update(staged.resources)
        self._known_attribute_keys.update(staged.new_keys)
        self._next_batch += staged.batches

    def _reload_claims(self) -> None:
        """A commit failed: what is taken is what the store holds."""
        conn = self.conn
        self._next_batch = conn.execute(
            "SELECT coalesce(max(batch_id), 0) + 1 FROM ingest_batches").fetchall()[0][0]
        self._known_resources = {row[0] for row in conn.execute("SELECT resource_id FROM resources").fetchall()}
        self._known_attribute_keys = {
            row[0] for row in conn.execute("SELECT key FROM span_attribute_keys").fetchall()}

    def _stored(self, staged: _Staged) -> None:
        """What a committed transaction of moves adds: its exports are stored, the intake's
        segments holding only stored exports go, and its rows that went to DuckDB's log (a
        table that got less than a row group) count towards the next checkpoint."""
        self.commits += 1
        for name in self.stored:
            self.stored[name] += getattr(staged, name)
        self._pending_keys = self._pending_keys | staged.attribute_keys
        if staged.moved_through is not None:
            self.moved_through = staged.moved_through
        self.intake.release(self.moved_through)
        logged_spans = staged.spans if staged.spans < ROW_GROUP_ROWS else 0
        logged_logs = staged.logs if staged.logs < ROW_GROUP_ROWS else 0
        self._after_commit(logged_spans, logged_logs,
                           (staged.span_bytes if logged_spans else 0)
                           + (staged.log_bytes if logged_logs else 0))

    def refuse(self, export: intake.Export, error: BaseException) -> None:
        """Set an acknowledged export aside: the store refused its rows (`error`), and retrying
        does not change that. It is recorded as a batch of nothing from the source 'refused',
        and the log says what was lost."""
        log.error("the store refused the rows of an acknowledged export (intake seq %d, from %s, "
                  "%d spans and %d logs) and they are not stored: %s", export.seq, export.source,
                  export.batch.span_count, export.batch.log_count, first_line(error))
        self.commit_staged()
        with self.conn.cursor() as cur, transaction(cur):
            cur.execute(queries.load("insert_batch"), {
                "batch_id": self._next_batch, "received_at": datetime.now(timezone.utc), "source": "refused", "spans": 0, "logs": 0,
                "duplicates": 0, "intake_through": export.seq})
        self._next_batch += 1
        self.moved_through = export.seq
        self.intake.release(self.moved_through)

    def move_all(self, max_items: int = 50_000) -> int:
        """Move every export the intake holds past the store's `intake_through` (a collector
        acknowledged them and stopped before moving them), `max_items` spans and logs at a
        time; the spans and logs moved."""
        moved, waiting = 0, list(self.intake.read(self.moved_through))
        while group := intake.first_group(waiting, max_items):
            result = self.stage(group)
            moved += result.spans + result.logs
            del waiting[:len(group)]
        self.commit_staged()
        if moved:
            log.info("moved %d spans and logs a collector had acknowledged into %s", moved, self.path)
        return moved

    def _append(self, batch: DecodedBatch, source: str, rollback: bool) -> AppendResult:
        """Append a batch in a transaction of its own (an import's, or the warm-up's)."""
        with self.conn.cursor() as cur, transaction(cur, commit=not rollback):
            staged = _Staged(cur)
            result = self._insert(staged, batch, source, None)
            if not rollback:
                small = result.spans + result.logs < SMALL_COMMIT_ROWS
                self._before_commit(cur, staged.attribute_keys, small)
        if rollback:
            return result
        self._claim(staged)
        self.commits += 1
        for name in self.stored:
            self.stored[name] += getattr(staged, name)
        self._pending_keys = self._pending_keys | staged.attribute_keys
        self._after_commit(result.spans, result.logs, batch.nbytes, small)
        if self._checkpoint_due:
            self._checkpoint_committed()
        return result

    def _insert(self, staged: _Staged, batch: DecodedBatch, source: str,
                moved_through: int | None) -> AppendResult:
        """Insert the batch's resources, spans and logs, and its batch row, in `staged`'s
        transaction; spans and logs already stored (re-sent) are left out."""
        cur, batch_id = staged.cur, self._next_batch + staged.batches
        spans = logs = duplicates = 0
        new_resources = {k: v for k, v in batch.resources.items()
                         if k not in self._known_resources and k not in staged.resources}
        new_keys = sorted(batch.attribute_keys - self._known_attribute_keys - staged.new_keys)
        if new_resources:
            cur.register("incoming_resources", resource_table(new_resources))
            cur.execute(queries.load("insert_resources"))
            cur.unregister("incoming_resources")
        if batch.spans is not None and batch.spans.num_rows:
            incoming = unique_spans(batch.spans)
            if staged.unseen is not None:
                incoming = without_keys(incoming, staged.unseen)
            keys = key_columns(incoming)
            starts = keys.column("start_time").cast(pa.int64())  # exact ns, not µs
            window = {"first_start": pc.min(starts).as_py(), "last_start": pc.max(starts).as_py()}
            # DuckDB keeps what is registered in a transaction until it ends: the checks read
            # a copy of the keys (~60 B a span), the insert a stream of the rows (used up).
            cur.register("incoming_keys", keys)
            if cur.execute(queries.load("stored_start_times"), window).fetchall()[0][0]:
                # fetchall, not Arrow: few rows, and DuckDB warns (each commit) that
                # Arrow output of a cursor's result copies it.
                if stored := cur.execute(queries.load("stored_spans"), window).fetchall():
                    incoming, keys = without(incoming, stored), without(keys, stored)
            cur.unregister("incoming_keys")
            cur.register("incoming_spans", stream(incoming))
            spans = cur.execute(queries.load("insert_spans"), {"batch_id": batch_id}).fetchall()[0][0]
            cur.unregister("incoming_spans")
            staged.keys.append(keys)
            if new_keys:
                cur.execute(queries.load("insert_attribute_keys"),
                            {"keys": new_keys, "batch_id": batch_id})
            duplicates = batch.spans.num_rows - spans
            staged.span_bytes += batch.spans.nbytes
        if batch.logs is not None and batch.logs.num_rows:
            incoming = new_records(cur, with_record_keys(cur, batch.logs),
                                   staged.unseen.log_keys if staged.unseen is not None else ())
            cur.register("incoming_logs", stream(incoming))
            logs = cur.execute(queries.load("insert_logs"), {"batch_id": batch_id}).fetchall()[0][0]
            cur.unregister("incoming_logs")
            staged.log_keys.append(incoming.column("record_key").to_numpy())
            staged.log_bytes += batch.logs.nbytes
        cur.execute(
            queries.load("insert_batch"),
            {"batch_id": batch_id, "received_at": datetime.now(timezone.utc), "source": source,
             "spans": spans, "logs": logs, "duplicates": duplicates, "intake_through": moved_through},
        )
        staged.batches += 1
        staged.spans += spans
        staged.logs += logs
        staged.duplicates += duplicates
        staged.resources.update(new_resources)
        staged.new_keys.update(new_keys)
        staged.attribute_keys |= batch.attribute_keys
        if moved_through is not None:
            staged.moved_through = moved_through
        return AppendResult(batch_id, spans, logs, duplicates)

    def _before_commit(self, cur: duckdb.DuckDBPyConnection, attribute_keys: frozenset[str],
                       small: bool) -> None:
        """DuckDB's settings for the commit (which may write row groups, or checkpoint)."""
        self._choose_shredding(cur, len(self._pending_keys | attribute_keys))
        self._choose_log_limit(cur, small)

    def _after_commit(self, spans: int, logs: int, nbytes: int, small: bool = True) -> None:
        """Count the rows a commit put in DuckDB's log; after small commits, as a collector's
        moves are, a checkpoint is due once a row group's worth of them (or of memory, for
        rows larger than usual) waits there, and the caller runs it once no transaction of
        its own is open. A large commit (an import's) is left to DuckDB's own trigger, which
        then writes the commit's rows straight into the file instead of into the log first
        (50k-span commits: 80k spans/s against 57k)."""
        wal = self._wal_bytes()
        if wal < self._wal_before:   # DuckDB checkpointed inside the commit
            self._checkpointed()
        self._wal_before = wal
        self._uncheckpointed["spans"] += spans
        self._uncheckpointed["logs"] += logs
        self._uncheckpointed_bytes += nbytes
        if small and (max(self._uncheckpointed.values()) >= ROW_GROUP_ROWS
                      or self._uncheckpointed_bytes >= self.max_uncheckpointed_bytes):
            self._checkpoint_due = True

    def _wal_bytes(self) -> int:
        return file_bytes(wal_path(self.path))

    def _checkpoint_committed(self) -> None:
        """Fold the log into the file once a row group's worth of rows waits in memory: each
        row group is then compressed and shredded once, whole (DuckDB's own trigger, by log
        size, cut row groups short and rewrote them). The batch is committed already, so a
        failed checkpoint is logged and the rows stay in the log, to be folded next time."""
        started = time.perf_counter()
        try:
            self.checkpoint()
        except duckdb.FatalException as exc:
            self._reopen(first_line(exc))
        except duckdb.Error as exc:
            log.warning("checkpoint after commit failed (the data is committed in the log): %s", exc)
        else:
            self._checkpointed()
        finally:
            self.checkpoints += 1
            self.checkpoint_s += time.perf_counter() - started

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

    def checkpoint(self) -> None:
        """Fold DuckDB's log into the file; nothing is left waiting for a checkpoint."""
        self.conn.execute("CHECKPOINT")
        self._checkpointed()

    def close(self) -> None:
        """Checkpoint (fold the WAL into the file) and close; a failed checkpoint is logged,
        and the WAL then replays on the next open. An empty intake is removed."""
        try:
            self.commit_staged()
        except (duckdb.Error, TracekitError) as exc:   # its exports stay in the intake
            log.warning("committing the last moves at close failed (the next open moves them "
                        "from the intake): %s", exc)
        try:
            self.checkpoint()
        except duckdb.Error as exc:
            log.warning("checkpoint at close failed (the log replays on next start): %s", exc)
        finally:
            self.conn.close()
            if self._committer is not None:
                self._committer.shutdown()
            self.intake.close(remove=self.moved_through >= (self.intake.last_seq or 0))


@contextmanager
def transaction(cur: duckdb.DuckDBPyConnection, commit: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
    """BEGIN; when the block ends COMMIT (or, with `commit` false, ROLLBACK); ROLLBACK if it
    raises."""
    cur.execute("BEGIN")
    try:
        yield cur
    except BaseException:
        try:
            cur.execute("ROLLBACK")
        except duckdb.Error:
            pass
        raise
    cur.execute("COMMIT" if commit else "ROLLBACK")


def intake_path(path: Path) -> Path:
    """The intake (a directory of log segments) of the store at `path`."""
    return path.with_name(path.name + intake.SUFFIX)


def wal_path(path: Path) -> Path:
    """DuckDB's write-ahead log of the database file at `path`."""
    return path.with_name(path.name + ".wal")


def file_bytes(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _source(exports: Sequence[intake.Export]) -> str:
    """The source of a move: its exports' one source, or 'mixed'."""
    sources = {export.source for export in exports}
    return sources.pop() if len(sources) == 1 else "mixed"


def first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def unique_spans(spans: pa.Table) -> pa.Table:
    """The spans with each (trace_id, span_id) once: a client may send one twice in a batch."""
    keys = pc.binary_join_element_wise(spans.column("trace_id"), spans.column("span_id"), "")
    if pc.count_distinct(keys).as_py() == spans.num_rows:
        return spans
    first: dict[str, int] = {}
    for index, key in enumerate(keys.to_pylist()):
        first.setdefault(key, index)
    return spans.take(sorted(first.values()))


def key_columns(spans: pa.Table) -> pa.Table:
    """The spans' (trace_id, span_id, start_time), copied: a decoded export's columns are
    slices of one buffer, which a slice of them would keep whole (~500 B a span, not ~60)."""
    def copied(column: pa.ChunkedArray) -> pa.Array:
        return pa.concat_arrays(column.chunks) if column.num_chunks else pa.array([], column.type)
    return pa.table({name: copied(spans.column(name)) for name in ("trace_id", "span_id", "start_time")})


def without_keys(spans: pa.Table, unseen: _Staged) -> pa.Table:
    """The spans whose (trace_id, span_id, start_time) is not among the spans inserted in
    `unseen`: a span a client re-sent while the first copy's transaction committed."""
    stored_starts = unseen.sorted_start_times()
    if not stored_starts.size or not spans.num_rows:
        return spans
    starts = spans.column("start_time").cast(pa.int64()).to_numpy()
    at = np.minimum(np.searchsorted(stored_starts, starts), len(stored_starts) - 1)
    maybe = stored_starts[at] == starts
    if not maybe.any():
        return spans
    candidates = pa.array(starts[maybe], pa.int64()).cast(pa.timestamp("ns"))
    stored = set()
    for table in unseen.keys:
        hits = table.filter(pc.is_in(table.column("start_time"), value_set=candidates))
        stored.update(zip(hits.column("trace_id").to_pylist(), hits.column("span_id").to_pylist()))
    return without(spans, sorted(stored)) if stored else spans


def without(spans: pa.Table, stored: list[tuple[str, str]]) -> pa.Table:
    """The spans whose (trace_id, span_id) is not among `stored`."""
    keys = pc.binary_join_element_wise(spans.column("trace_id"), spans.column("span_id"), ":")
    stored_keys = pa.array([f"{trace_id}:{span_id}" for trace_id, span_id in stored], pa.string())
    return spans.filter(pc.invert(pc.is_in(keys, value_set=stored_keys)))


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
