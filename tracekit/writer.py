"""The group-commit writer: one thread owns the store connection and commits batches.

Receivers hand decoded batches to `submit()` and get a future that resolves only after the
transaction holding them has committed, so an export is acknowledged only once its data is
in the DuckDB file. Batches that wait together are written in one transaction (group commit),
which keeps commits few when many small exports arrive. The queue is bounded by items:
past the bound `submit()` refuses with `Overloaded`, which receivers turn into a retryable
answer (HTTP 503 + Retry-After, gRPC UNAVAILABLE) instead of letting memory grow.
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

from tracekit.errors import Overloaded, WriterStopped
from tracekit.otlp.batches import DecodedBatch, concat
from tracekit.writable import AppendResult, WritableStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WriterLimits:
    """Bounds of the writer queue and of one transaction."""

    max_pending_items: int = 200_000   # spans + logs waiting; beyond this, refuse
    max_pending_bytes: int = 64 * 1024 * 1024   # and their decoded size
    max_items_per_commit: int = 50_000
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
        self._thread = threading.Thread(target=self._run, name="tracekit-writer", daemon=True)
        self.committed_spans = 0
        self.committed_logs = 0
        self.duplicate_spans = 0
        self.refused_items = 0
        self.commits = 0
        self.busy_s = 0.0        # time spent writing and committing
        self._last_commit_s = 0.0
        self._backlogged = False  # requests were waiting when the last commit ended

    def start(self) -> Writer:
        self.store.warm_up()
        self._thread.start()
        return self

    def submit(self, batch: DecodedBatch, source: str) -> Future:
        """Queue a batch; the future gives the AppendResult of the transaction that committed it
        (shared by the batches committed together)."""
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
            self._cond.notify()
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

    def shutdown(self, timeout_s: float = 10.0) -> bool:
        """Commit everything queued, then checkpoint and close the store. Safe to call twice."""
        with self._cond:
            already = self._stopping
            self._stopping = True
            self._cond.notify_all()
        if already:
            self._thread.join(timeout_s)
            return not self._thread.is_alive()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        elif self._thread.ident is None:
            self._drain()
        closed = not self._thread.is_alive()
        if closed:
            self.store.close()
        return closed

    def _take(self) -> list[_Pending]:
        with self._cond:
            while not self._queue and not self._stopping:
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

    def _drain(self) -> None:
        while self._queue:
            self._commit(self._take())

    def _commit(self, taken: list[_Pending]) -> None:
        started = time.perf_counter()
        # A caller that gave up (its future cancelled) still gets its data written: the
        # export may be retried, and the retry is deduplicated.
        for pending in taken:
            pending.future.set_running_or_notify_cancel()
        merged = concat([p.batch for p in taken])
        source = taken[0].source if len({p.source for p in taken}) == 1 else "mixed"
        try:
            result = self.store.append(merged, source)
        except BaseException as exc:  # the store failed: nothing in `taken` was committed
            log.error("writing %d batches failed: %s", len(taken), exc)
            for pending in taken:
                if not pending.future.cancelled():
                    pending.future.set_exception(exc)
        else:
            self.commits += 1
            self.committed_spans += result.spans
            self.committed_logs += result.logs
            self.duplicate_spans += result.duplicates
            for pending in taken:
                if not pending.future.cancelled():
                    pending.future.set_result(result)
            log.debug("committed %d spans, %d logs in %.1f ms", result.spans, result.logs,
                      1000 * (time.perf_counter() - started))
        finally:
            self._last_commit_s = time.perf_counter() - started
            self.busy_s += self._last_commit_s
            with self._cond:
                self._pending_items -= sum(p.items for p in taken)
                self._pending_bytes -= sum(p.nbytes for p in taken)
                self._backlogged = bool(self._queue)


__all__ = ["AppendResult", "Writer", "WriterLimits"]
