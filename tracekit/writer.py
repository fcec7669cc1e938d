"""The group-commit writer: appends exports to the intake, and moves them into the store.

Receivers hand decoded batches to `submit()` and get a future that resolves only after the
record holding them is in the store's intake log and synced to disk (`tracekit.intake`), so
an export is acknowledged only once its data is on disk. Batches that wait together go in one
record and one sync (group commit). A second thread, the mover, appends acknowledged exports,
which the writer keeps in memory until then, to the store's tables in one open transaction,
committed when it holds a whole row group (DuckDB then writes it straight into the file), when
a query waits for it, or at shutdown; the intake goes on taking exports meanwhile. Queries
through the collector wait for the mover to commit what was acknowledged before them
(`flush`). If a move fails, its transaction is rolled back and the exports in it are read back
from the intake log.

The queue is bounded by items and bytes: past the bound `submit()` refuses with `Overloaded`,
which receivers turn into a retryable answer (HTTP 503 + Retry-After, gRPC UNAVAILABLE)
instead of letting memory grow. The intake's backlog is bounded by bytes: past it the writer
waits for the mover before it acknowledges more, and the queue fills.

One module of ~480 lines, on purpose: the queue, the intake thread and the mover share one
condition variable and the state it guards (what is queued, acknowledged, staged, committed,
and who waits for which), and their invariants are read together; what they call into is
split by idea (`tracekit.writable` and the modules it names). The route is in
docs/design/collector.md.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from concurrent.futures import Future
from dataclasses import dataclass

import duckdb

from tracekit.errors import Overloaded, WriterStopped
from tracekit.intake import Accepted, Export, first_group
from tracekit.otlp.batches import DecodedBatch
from tracekit.threads import name_os_thread
from tracekit.writable import AppendResult, WritableStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WriterLimits:
    """Bounds of the writer queue and of one transaction."""

    max_pending_items: int = 200_000   # spans + logs waiting; beyond this, refuse
    max_pending_bytes: int = 64 * 1024 * 1024   # and their decoded size
    # Acknowledged and not yet moved into the store (held in memory until then): beyond this
    # the writer waits for the mover before it acknowledges more (and the queue above fills).
    max_intake_bytes: int = 16 * 1024 * 1024
    max_items_per_commit: int = 50_000   # in an intake commit, and in a move
    mover_retry_s: float = 1.0           # after a failed move
    # An acknowledged export the store refuses this many times in a row, moved alone, with an
    # error in its data (not the disk's or DuckDB's), is set aside so the rest can be stored.
    refuse_after: int = 3
    retry_after_s: float = 1.0
    # While requests are still being decoded, wait this long for them to join the commit
    # (like PostgreSQL's commit_delay with commit_siblings): one commit of four requests
    # costs far less than four commits of one.
    commit_delay_s: float = 0.010
    # While the writer is the bottleneck (requests were already waiting when its last commit
    # ended), wait up to half that commit's time, at most this long, for more to join: each
    # acknowledged exporter sends its next request within a few ms, and one commit of four
    # requests costs far less than two of two (gRPC, 4 exporters, before any checkpoint:
    # 24k spans/s, median of 3 runs, then 33k in one run).
    backlog_delay_s: float = 0.050


# DuckDB's errors that say an export's rows cannot be stored, whatever is retried.
DATA_ERRORS = (duckdb.ConversionException, duckdb.InvalidInputException,
               duckdb.ConstraintException, duckdb.TypeMismatchException, duckdb.OutOfRangeException)


@dataclass
class _Pending:
    batch: DecodedBatch
    source: str
    future: Future

    @property
    def items(self) -> int:
        return self.batch.span_count + self.batch.log_count

    @property
    def nbytes(self) -> int:
        return self.batch.nbytes


class Writer:
    """Owns the WritableStore; safe to call `submit()` from any thread."""

    def __init__(self, store: WritableStore, limits: WriterLimits | None = None):
        self.store = store
        self.limits = limits or WriterLimits()
        self._queue: deque[_Pending] = deque()
        self._pending_items = 0
        self._pending_bytes = 0
        self._incoming = 0        # requests received and still being decoded
        self._cond = threading.Condition()
        self._stopping = False
        self._failed: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="tracekit-intake", daemon=True)
        self._mover = threading.Thread(target=self._move_loop, name="tracekit-mover", daemon=True)
        # Acknowledged exports not yet moved into the store, oldest first.
        self._intake: deque[Export] = deque()
        self._intake_bytes = 0
        # The last export acknowledged, staged in the store's open transaction (taken out of
        # `_intake`), and committed; and the last one a reader waits to see committed.
        self._accepted_seq = self._staged_seq = self._moved_seq = store.moved_through
        self._flush_seq = 0
        # Checkpoints asked for (`checkpoint`) and run by the mover between its transactions:
        # DuckDB refuses a CHECKPOINT while another transaction writes.
        self._checkpoints_asked = self._checkpoints_run = 0
        self._checkpoint_error: BaseException | None = None
        self._accepting = True    # the intake thread runs (or may still be started)
        self.refused_items = 0
        self.accepts = 0          # intake records (acknowledgements)
        self.accept_s = 0.0       # time spent writing and syncing them
        self.moves = 0            # groups of exports staged
        self.busy_s = 0.0         # time spent moving, commits and checkpoints included
        self.failed_moves = 0
        self.refused_exports = 0  # acknowledged, then set aside: the store refused their rows
        self._last_commit_s = 0.0
        self._backlogged = False  # requests were waiting when the last commit ended

    def start(self) -> Writer:
        self.store.on_background_commit = self._wake
        self.store.warm_up()
        self._thread.start()
        self._mover.start()
        return self

    def _wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def submit(self, batch: DecodedBatch, source: str) -> Future:
        """Queue a batch; the future gives the `Accepted` of the intake record that holds it
        (shared by the batches written together)."""
        pending = _Pending(batch, source, Future())
        with self._cond:
            if self._stopping or self._failed is not None:
                raise WriterStopped("the collector is shutting down; retry against the next one")
            size = pending.nbytes
            if self._pending_items and (
                    self._pending_items + pending.items > self.limits.max_pending_items
                    or self._pending_bytes + size > self.limits.max_pending_bytes):
                self.refused_items += pending.items
                raise Overloaded(
                    f"writer is behind ({self._pending_items} items, "
                    f"{self._pending_bytes / 2**20:.0f} MiB waiting); retry later",
                    self.limits.retry_after_s,
                )
            self._queue.append(pending)
            self._pending_items += pending.items
            self._pending_bytes += size
            self._cond.notify_all()   # the mover waits on it too
        return pending.future

    def full(self) -> str | None:
        """Why a new export would be refused now (the queue is full or the writer stopped),
        or None: checked before a request's body is read, so a refusal costs nothing."""
        with self._cond:
            if self._stopping or self._failed is not None:
                return "the collector is shutting down; retry against the next one"
            if (self._pending_items >= self.limits.max_pending_items
                    or self._pending_bytes >= self.limits.max_pending_bytes):
                return (f"writer is behind ({self._pending_items} items, "
                        f"{self._pending_bytes / 2**20:.0f} MiB waiting); retry later")
        return None

    def backlog(self) -> tuple[int, int, int]:
        """(spans and logs queued, their bytes, bytes acknowledged and not yet in the store)."""
        with self._cond:
            return self._pending_items, self._pending_bytes, self._intake_bytes

    @contextmanager
    def incoming(self) -> Iterator[None]:
        """Mark a request as on its way (being decoded), so a commit may wait for it."""
        with self._cond:
            self._incoming += 1
        try:
            yield
        finally:
            with self._cond:
                self._incoming -= 1
                self._cond.notify_all()

    def flush(self, timeout_s: float) -> bool:
        """Wait until every export acknowledged so far is in the store's tables (a query
        through the collector then sees it); False if that took longer than `timeout_s`."""
        with self._cond:
            target = self._accepted_seq
            self._flush_seq = max(self._flush_seq, target)
            self._cond.notify_all()
            return self._wait(lambda: self._moved_seq >= target, timeout_s)

    def checkpoint(self, timeout_s: float) -> bool:
        """Commit what the mover holds and fold DuckDB's log into the file (the blocks of
        deleted rows then count as free): run by the mover between its transactions. False if
        that took longer than `timeout_s`; raises what the checkpoint raised."""
        with self._cond:
            self._checkpoints_asked += 1
            ticket = self._checkpoints_asked
            self._cond.notify_all()
            if not self._wait(lambda: self._checkpoints_run >= ticket, timeout_s):
                return False
            error, self._checkpoint_error = self._checkpoint_error, None
        if error is not None:
            raise error
        return True

    def _wait(self, done, timeout_s: float) -> bool:
        """Wait, holding `_cond`, until `done()` or the mover has stopped; whether done."""
        deadline = time.monotonic() + timeout_s
        while not done() and self._mover.is_alive():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._cond.wait(remaining)
        return done()

    def shutdown(self, timeout_s: float = 10.0, before_close=None) -> bool:
        """Commit everything queued, move it into the store, run `before_close()` (the
        analyst's last update), then checkpoint and close the store. Safe to call twice. What
        is left in the intake at the timeout stays there and is moved when the store is next
        opened for writing."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            already = self._stopping
            self._stopping = True
            self._cond.notify_all()
        if not already and self._thread.ident is None:
            self._drain()
        for thread in (self._thread, self._mover):
            if thread.ident is not None:
                thread.join(max(0.0, deadline - time.monotonic()))
        closed = not self._thread.is_alive() and not self._mover.is_alive()
        if closed and not already:
            if before_close is not None:
                before_close()
            self.store.close()
        return closed

    def _take(self) -> list[_Pending]:
        with self._cond:
            while (not self._queue or self._intake_bytes >= self.limits.max_intake_bytes) \
                    and not self._stopping:
                self._cond.wait()
            delay = self.limits.commit_delay_s
            if self._backlogged:
                delay = max(delay, min(self.limits.backlog_delay_s, self._last_commit_s / 2))
            deadline = time.monotonic() + delay
            while ((self._incoming or self._backlogged) and not self._stopping
                   and self._pending_items < self.limits.max_items_per_commit):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            taken: list[_Pending] = []
            items = 0
            while self._queue and (not taken or items + self._queue[0].items <= self.limits.max_items_per_commit):
                pending = self._queue.popleft()
                taken.append(pending)
                items += pending.items
            return taken

    def _run(self) -> None:
        name_os_thread()
        try:
            while True:
                taken = self._take()
                if not taken:
                    return  # stopping and nothing left
                try:
                    self._commit(taken)
                except BaseException as exc:  # never leave callers waiting on a dead writer
                    log.exception("the writer failed; refusing further batches")
                    with self._cond:
                        self._failed = exc
                        failed = list(self._queue)
                        self._queue.clear()
                    for pending in taken + failed:
                        if not pending.future.done():
                            pending.future.set_exception(WriterStopped(f"the writer failed: {exc}"))
                    return
        finally:
            with self._cond:
                self._accepting = False
                self._cond.notify_all()

    def _drain(self) -> None:
        while self._queue:
            self._commit(self._take())
        self._accepting = False
        while self._move_once():
            pass

    def _commit(self, taken: list[_Pending]) -> None:
        """Append the taken exports to the intake: acknowledge them."""
        started = time.perf_counter()
        # A caller that gave up (its future cancelled) still gets its data written: the
        # export may be retried, and the retry is deduplicated.
        for pending in taken:
            pending.future.set_running_or_notify_cancel()
        accepted: Accepted | None = None
        try:
            accepted = self.store.accept([(p.batch, p.source) for p in taken])
        except BaseException as exc:  # the store failed: nothing in `taken` was committed
            log.error("writing %d batches failed: %s", len(taken), exc)
            for pending in taken:
                if not pending.future.cancelled():
                    pending.future.set_exception(exc)
        else:
            self.accepts += 1
            for pending in taken:
                if not pending.future.cancelled():
                    pending.future.set_result(accepted)
        finally:
            self._last_commit_s = time.perf_counter() - started
            self.accept_s += self._last_commit_s
            with self._cond:
                self._pending_items -= sum(p.items for p in taken)
                self._pending_bytes -= sum(p.nbytes for p in taken)
                if accepted is not None:
                    self._intake.extend(Export(seq, p.batch, p.source) for seq, p in
                                        enumerate(taken, start=accepted.first_seq))
                    self._intake_bytes += sum(p.nbytes for p in taken)
                    self._accepted_seq = accepted.last_seq
                self._backlogged = bool(self._queue)
                self._cond.notify_all()

    @property
    def commits(self) -> int:
        """Transactions committed into the store."""
        return self.store.commits

    @property
    def committed_spans(self) -> int:
        return self.store.stored["spans"]

    @property
    def committed_logs(self) -> int:
        return self.store.stored["logs"]

    @property
    def duplicate_spans(self) -> int:
        return self.store.stored["duplicates"]

    def _move_loop(self) -> None:
        """Move acknowledged exports into the store until the intake thread has stopped and
        nothing is left to move. After a failed move the oldest export is moved alone, so one
        whose rows the store refuses is found, and set aside, instead of holding up the rest."""
        name_os_thread()
        failures = 0
        while True:
            with self._cond:
                while (not self._intake and not self._commit_wanted() and self._accepting
                       and not self._checkpoint_wanted() and not self.store.committed_in_background):
                    self._cond.wait()
                if not self._intake and not self._accepting and not self.store.staging:
                    return
            if self._checkpoint_wanted():
                self._run_checkpoint()
                continue
            try:
                if not self._move_once(1 if failures else self.limits.max_items_per_commit,
                                       commit=bool(failures)):
                    self.store.settle()   # a commit in the background has ended
                    self._release_moved()
                failures = 0
            except Exception as exc:  # acknowledged exports stay in the intake: try again
                failures += 1
                self.failed_moves += 1
                self._restore_unmoved()
                if isinstance(exc, DATA_ERRORS) and failures >= self.limits.refuse_after:
                    try:
                        with self._cond:
                            oldest = self._intake[0]
                        self.store.refuse(oldest, exc)
                    except Exception as refusing:
                        exc = refusing
                    else:
                        self.refused_exports += 1
                        failures = 0
                        with self._cond:
                            self._intake.popleft()
                            self._intake_bytes -= oldest.batch.nbytes
                            self._staged_seq = oldest.seq
                        self._release_moved()
                        continue
                log.error("moving acknowledged exports into the store failed (they stay in the "
                          "intake; retrying in %g s): %s", self.limits.mover_retry_s, exc)
                with self._cond:
                    if self._stopping and not self._accepting and failures >= 3:
                        return   # shutting down: the next open moves them
                    self._cond.wait(self.limits.mover_retry_s)

    def _checkpoint_wanted(self) -> bool:
        return self._checkpoints_run < self._checkpoints_asked

    def _run_checkpoint(self) -> None:
        """Commit what is staged and checkpoint, for whoever asked (`checkpoint`)."""
        with self._cond:
            asked = self._checkpoints_asked
        error = None
        try:
            self.store.commit_staged()
            self.store.checkpoint()
        except Exception as exc:   # told to the caller; the mover goes on
            error = exc
            self._restore_unmoved()
        finally:
            self._release_moved()
        with self._cond:
            self._checkpoints_run = asked
            self._checkpoint_error = error
            self._cond.notify_all()

    def _commit_wanted(self) -> bool:
        """Whether the open transaction of moves is to be committed now: it holds an export a
        reader waits for, or the writer is stopping and nothing is left to stage. (Otherwise
        the store commits it once it holds a whole row group.) Called with `_cond` held."""
        return self.store.staging and (
            self._moved_seq < self._flush_seq <= self._staged_seq
            or (self._stopping and not self._intake))

    def _move_once(self, max_items: int | None = None, commit: bool = False) -> bool:
        """Stage the oldest acknowledged exports, whole, about `max_items` spans and logs of
        them (at least one), in the store's open transaction; with `commit`, or if nothing is
        left to stage and a reader waits or the writer stops, commit it. False if there was
        nothing to do."""
        with self._cond:
            exports = first_group(self._intake, max_items or self.limits.max_items_per_commit)
            if not exports and not self._commit_wanted():
                return False
        started = time.perf_counter()
        try:
            if exports:
                self.store.stage(exports)
                self.moves += 1
                with self._cond:   # staged: their rows are DuckDB's, and the intake's on disk
                    for _ in exports:
                        self._intake_bytes -= self._intake.popleft().batch.nbytes
                    self._staged_seq = exports[-1].seq
                    self._cond.notify_all()
            with self._cond:
                commit = commit or self._commit_wanted()
            if commit:
                self.store.commit_staged()
        finally:
            self.busy_s += time.perf_counter() - started
            self._release_moved()
        log.debug("moved %d exports in %.1f ms", len(exports), 1000 * (time.perf_counter() - started))
        return True

    def _restore_unmoved(self) -> None:
        """After a failed move (its transaction rolled back): what the store holds leaves the
        intake, and the exports that were staged and are not stored are read back from the
        intake log, oldest first, ahead of the rest."""
        with self._cond:
            moved, staged = self.store.moved_through, self._staged_seq
            while self._intake and self._intake[0].seq <= moved:
                self._intake_bytes -= self._intake.popleft().batch.nbytes
        lost = self.store.read_back(staged)
        with self._cond:
            self._intake.extendleft(reversed(lost))
            self._intake_bytes += sum(export.batch.nbytes for export in lost)
            self._staged_seq = moved

    def _release_moved(self) -> None:
        """The exports up to the store's `moved_through` are committed: wake whoever waits
        for them."""
        with self._cond:
            self._moved_seq = self.store.moved_through
            self._cond.notify_all()


__all__ = ["AppendResult", "Writer", "WriterLimits"]
