"""The store's one writer: it opens the file for writing, acknowledges exports into the intake,
and moves them into the tables in transactions of a row group each.

A span meets, in order (docs/design/collector.md): `accept` (the intake log, `intake_book`),
`stage` (an open transaction, `staging`; re-sent spans left out, `resent_spans`), a commit
in the committer thread (`staging.Committer`), and a checkpoint when the policy says one is
due (`checkpoints`). Opening, reopening after DuckDB gives the database up, and closing are
here; the connection, the schema and its migrations are in `tracekit.opening`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import duckdb

from tracekit import intake, queries
from tracekit.checkpoints import ROW_GROUP_ROWS, SMALL_COMMIT_ROWS, CheckpointPolicy
from tracekit.errors import TracekitError
from tracekit.intake_book import IntakeBook
from tracekit.opening import check_version, connect_for_writing, intake_path, migrate
from tracekit.otlp.batches import DecodedBatch, concat, split
from tracekit.staging import (AppendResult, Claims, Committer, Staged, insert, insert_batch_row,
                              source_of, transaction)

log = logging.getLogger(__name__)


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
        self.policy = CheckpointPolicy(path, memory_limit_mib)
        # Transactions committed, and the spans, logs and re-sent spans (left out) in them.
        self.commits = 0
        self.stored = {"spans": 0, "logs": 0, "duplicates": 0}
        self._broken = False   # DuckDB gave up the database and reopening it failed
        # The open transaction of moves (`stage`), if any, and the committer thread's; only
        # the mover's thread uses them.
        self._staged: Staged | None = None
        self._committer = Committer()
        self._load_state()
        # The log of acknowledged exports (`accept`), which `move` brings into the tables.
        self.intake = IntakeBook(intake_path(path), self._stored_through())

    def _load_state(self) -> None:
        self._claims = Claims(self.conn)
        self.policy.connected(self.conn)

    def _stored_through(self) -> int:
        """The last intake export the store holds, as its batch rows say."""
        return self.conn.execute(
            "SELECT coalesce(max(intake_through), 0) FROM ingest_batches").fetchall()[0][0]

    @property
    def moved_through(self) -> int:
        """The last acknowledged export the store holds."""
        return self.intake.moved_through

    @property
    def checkpoints(self) -> int:
        """Checkpoints the writer ran after commits."""
        return self.policy.checkpoints

    @property
    def checkpoint_s(self) -> float:
        """The time those checkpoints took."""
        return self.policy.checkpoint_s

    @property
    def on_background_commit(self) -> Callable[[], None] | None:
        """Called in the committer thread when a commit there ends."""
        return self._committer.on_commit

    @on_background_commit.setter
    def on_background_commit(self, callback: Callable[[], None] | None) -> None:
        self._committer.on_commit = callback

    @classmethod
    def open(cls, path: Path, threads: int | None = None,
             memory_limit_mib: int | None = None) -> WritableStore:
        """Open (creating and migrating) the store; `threads` caps DuckDB's worker threads,
        `memory_limit_mib` its memory."""
        conn = connect_for_writing(path, threads, memory_limit_mib)
        try:
            migrate(conn)
            check_version(conn, path)
            store = cls(path, conn, threads, memory_limit_mib)
        except BaseException:
            conn.close()
            raise
        store.move_all()   # what a collector acknowledged before it stopped abruptly
        return store

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
            self.conn = connect_for_writing(self.path, self._threads, self._memory_limit_mib)
            self._load_state()
            self.intake.moved_through = self._stored_through()
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
        return self.intake.accept(batches)

    def read_back(self, through: int) -> list[intake.Export]:
        """The acknowledged exports after `moved_through` up to `through`, from the intake:
        staged in a transaction that was rolled back, and to be moved again."""
        return self.intake.read_back(through)

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
        if self.staging:
            self._writing(self._commit_staged)

    @property
    def staging(self) -> bool:
        """Whether moves are staged and not yet known to be committed."""
        return self._staged is not None or self._committer.committing is not None

    @property
    def committed_in_background(self) -> bool:
        """Whether the commit in the committer thread has ended (`settle` takes it in)."""
        return self._committer.done

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
                result = insert(staged, self._claims, concat(batches), source_of(exports), through)
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
        return AppendResult(self._claims.next_batch, spans, logs, duplicates)

    def _begin(self) -> Staged:
        if self.policy.due:   # rows in DuckDB's log make a row group: fold them first
            self._await_committing()
            self._checkpoint_committed()
        cur = self.conn.cursor()
        cur.execute("BEGIN")
        # A transaction committing meanwhile is not seen by this one: its spans and logs are
        # checked against this one's by key instead (`staging.insert`).
        self._staged = Staged(cur, unseen=self._committer.committing)
        return self._staged

    def _hand_over(self) -> None:
        """Commit the open transaction, which holds a whole row group, in the committer
        thread, while the mover stages the next."""
        staged, self._staged = self._staged, None
        try:
            self._await_committing()   # one at a time, in order
            self.policy.before_commit(staged.cur, staged.attribute_keys, small=True)
        except BaseException:
            self._staged = staged
            raise
        self._claims.claim(staged)
        staged.unseen = None   # all inserted: what it did not see no longer matters
        self._committer.commit(staged)

    def _await_committing(self) -> None:
        """Wait for the transaction committing in the background, if any, and take what it
        stored into account; raise what its commit raised."""
        try:
            staged = self._committer.wait()
        except BaseException:
            self._claims.reload(self.conn)   # what is taken is what the store holds
            raise
        if staged is not None:
            self._stored(staged)

    def _commit_staged(self) -> None:
        staged, self._staged = self._staged, None
        try:
            self._await_committing()
            if staged is None:
                return
            self.policy.before_commit(staged.cur, staged.attribute_keys, small=True)
            staged.cur.execute("COMMIT")
        except BaseException:
            self._staged = staged
            self._roll_back_staged()
            raise
        staged.cur.close()
        staged.unseen = None
        self._claims.claim(staged)
        self._stored(staged)
        if self.policy.due:
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

    def _stored(self, staged: Staged) -> None:
        """What a committed transaction of moves adds: its exports are stored, the intake's
        segments holding only stored exports go, and its rows that went to DuckDB's log (a
        table that got less than a row group) count towards the next checkpoint."""
        self.commits += 1
        for name in self.stored:
            self.stored[name] += getattr(staged, name)
        self.intake.stored_through(staged.moved_through if staged.moved_through is not None
                                   else self.intake.moved_through)
        logged_spans = staged.spans if staged.spans < ROW_GROUP_ROWS else 0
        logged_logs = staged.logs if staged.logs < ROW_GROUP_ROWS else 0
        self.policy.after_commit(logged_spans, logged_logs,
                                 (staged.span_bytes if logged_spans else 0)
                                 + (staged.log_bytes if logged_logs else 0),
                                 staged.attribute_keys)

    def refuse(self, export: intake.Export, error: BaseException) -> None:
        """Set an acknowledged export aside: the store refused its rows (`error`), and retrying
        does not change that. It is recorded as a batch of nothing from the source 'refused',
        and the log says what was lost."""
        log.error("the store refused the rows of an acknowledged export (intake seq %d, from %s, "
                  "%d spans and %d logs) and they are not stored: %s", export.seq, export.source,
                  export.batch.span_count, export.batch.log_count, first_line(error))
        self.commit_staged()
        with self.conn.cursor() as cur, transaction(cur):
            insert_batch_row(cur, self._claims.next_batch, "refused", 0, 0, 0, export.seq)
        self._claims.next_batch += 1
        self.intake.stored_through(export.seq)

    def move_all(self, max_items: int = 50_000) -> int:
        """Move every export the intake holds past the store's `intake_through` (a collector
        acknowledged them and stopped before moving them), `max_items` spans and logs at a
        time; the spans and logs moved."""
        moved, waiting = 0, self.intake.waiting()
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
            staged = Staged(cur)
            result = insert(staged, self._claims, batch, source, None)
            if not rollback:
                small = result.spans + result.logs < SMALL_COMMIT_ROWS
                self.policy.before_commit(cur, staged.attribute_keys, small)
        if rollback:
            return result
        self._claims.claim(staged)
        self.commits += 1
        for name in self.stored:
            self.stored[name] += getattr(staged, name)
        self.policy.after_commit(result.spans, result.logs, batch.nbytes, staged.attribute_keys, small)
        if self.policy.due:
            self._checkpoint_committed()
        return result

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
        finally:
            self.policy.checkpoints += 1
            self.policy.checkpoint_s += time.perf_counter() - started

    def checkpoint(self) -> None:
        """Fold DuckDB's log into the file; nothing is left waiting for a checkpoint."""
        self.conn.execute("CHECKPOINT")
        self.policy.checkpointed()

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
            self._committer.shutdown()
            self.intake.close()


def first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
