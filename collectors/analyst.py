"""The collector's analyst: keeps the store's analysis tables current as the writer commits.

A thread of its own polls how far the tables are behind the committed batches and updates
them (tracekit.analysis.persist), a bounded chunk of spans at a time, with the analysis
itself in a worker process so that the collector's threads keep their CPU; the reads and
writes run on the store's DuckDB connection (in their own transactions, which never touch
the tables the writer writes). At start it first catches up on what the store holds
unanalyzed, in the background; at stop it analyzes what the writer committed last.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from concurrent.futures.process import BrokenProcessPool

from tracekit.analysis import persist, worker
from tracekit.threads import lower_thread_priority, name_os_thread
from tracekit.writable import WritableStore

log = logging.getLogger("tracekit.collector")

POLL_S = 0.25               # how often it looks for new commits
TYPES_EVERY_S = 5.0         # the flow types (a query over every flow) at most this often,
TYPES_SHARE = 0.1           # and at most this share of the time (the query grows with the store)
CHUNK_SPANS = 60_000        # new spans per update at most (a row group in one or two parts)
MIN_CHUNK_SPANS = 5_000     # with less memory to spare than this needs, the analysis waits
KIB_PER_SPAN = 6            # what analyzing a span costs at the peak: ~3.5-5.5 KiB in the worker
                            # (pandas frames, the rows), ~1 in the collector (its reads, the rows)
NICENESS = 10               # the analysis runs below ingest's CPU priority: it may lag, acks not
COMMIT_EVERY_S = 1.0        # idle, it asks the writer to commit what it holds this often
RETRY_S = 5.0


class Analyst:
    """Start, then stop (safe twice); `lag_s` holds the recent commit → analyzed delays."""

    def __init__(self, store: WritableStore, poll_s: float = POLL_S,
                 types_every_s: float = TYPES_EVERY_S, chunk_spans: int = CHUNK_SPANS,
                 room_mib=lambda: None, commit=lambda: None, commit_every_s: float = COMMIT_EVERY_S):
        self.store = store
        # () -> None: asks the writer to commit the exports it holds, without waiting. The
        # writer commits a whole row group at a time (~6 s of spans at 20k spans/s) unless a
        # reader asks; spans not committed are not analyzed, so the analyst asks, at most every
        # `commit_every_s`: when idle, and between the chunks of an update (an analyst asking
        # only when idle let a busy stretch leave a row group of spans waiting for it, then
        # analyzed them all at once: the lag's tail).
        self.commit, self.commit_every_s = commit, commit_every_s
        self._commit_asked = 0.0
        # () -> the MiB the analysis may use now (None: no limit). Each chunk is sized to it,
        # and with too little the analysis waits: exports come first.
        self.room_mib = room_mib
        self.poll_s, self.types_every_s, self.chunk_spans = poll_s, types_every_s, chunk_spans
        self.updates = 0
        self.analyzed_spans = 0
        self.failures = 0
        self.lag_s: deque[float] = deque(maxlen=10_000)   # per update: oldest batch's wait
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._types_at = 0.0
        self._types_cost = 0.0      # seconds the last refresh of the flow types took
        self._types_stale = False   # flows changed since the types were last refreshed
        self._lock = threading.Lock()     # one update at a time (the thread, or stop's last)
        self._analyzed = threading.Condition()   # notified after each update
        self._through = 0                  # the last batch analyzed
        # The last batch whose flows the flow types (and so the flows' type names) cover.
        self.typed_through = 0
        self._forgetting = 0               # traces retention deleted, still to forget
        self._wake = threading.Event()

    def start(self) -> Analyst:
        self._thread = threading.Thread(target=self._run, name="tracekit-analyst", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop polling, then, for up to `timeout_s`, analyze what is left (the writer has
        drained by now); what is still left is analyzed at the next start."""
        if self._thread is None:
            return
        deadline = time.monotonic() + timeout_s
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout_s)
        self._thread = None
        if timeout_s <= 0:
            return
        try:
            with self._lock:
                result = persist.update(self._cursor(), chunk_spans=self.chunk_spans,
                                        compute=self._compute, types=False,
                                        should_stop=lambda: time.monotonic() > deadline)
                if self._types_stale or result.new_spans:
                    persist.refresh_types(self._cursor())
        except Exception as exc:  # noqa: BLE001 - the next start catches up
            log.warning("analysis at stop failed (the next start analyzes what is left): %s", exc)

    def update_now(self, types: bool | None = None) -> persist.UpdateResult:
        """Bring the tables up to date now (the flow types too when due or asked)."""
        with self._lock:
            refresh = self._types_due() if types is None else types
            # Readers waiting for a batch are told after each chunk, not when the update has
            # caught up with batches that kept arriving meanwhile.
            cursor = self._cursor()
            result = persist.update(cursor, chunk_spans=self.chunk_now,
                                    compute=self._compute, types=False,
                                    should_stop=self._stop.is_set,
                                    on_progress=lambda *_: self._chunk_done(cursor))
            if refresh:
                started = time.monotonic()
                through = persist.progress(cursor).analyzed_through
                persist.refresh_types(cursor)
                self.typed_through = through
                self._types_at = time.monotonic()
                self._types_cost = self._types_at - started
            self._note(persist.progress(self.store.conn.cursor()))
            self._types_stale = not refresh and (self._types_stale or bool(result.new_spans))
            if result.new_spans:
                self.updates += 1
                self.analyzed_spans += result.new_spans
            return result

    @property
    def analyzed_through(self) -> int:
        """The last ingest batch the tables hold."""
        with self._analyzed:
            return self._through

    def _types_due(self) -> bool:
        """Whether the flow types are due a refresh: TYPES_EVERY_S after the last, or longer
        when it took long (a store of many flows), so that it takes TYPES_SHARE of the time."""
        interval = max(self.types_every_s, self._types_cost / TYPES_SHARE)
        return time.monotonic() - self._types_at >= interval

    def chunk_now(self) -> int:
        """The new spans the next chunk may take: as many as the memory left allows, up to
        `chunk_spans`; 0 when that is under MIN_CHUNK_SPANS (the analysis waits)."""
        room = self.room_mib()
        if room is None:
            return self.chunk_spans
        spans = min(self.chunk_spans, int(room * 1024 / KIB_PER_SPAN))
        return spans if spans >= MIN_CHUNK_SPANS else 0

    def wait_current(self, timeout_s: float) -> bool:
        """Wait until every batch committed before the call is analyzed (False at the timeout):
        a query through the collector then sees the flows of what it sent before."""
        [(target,)] = self.store.conn.cursor().execute(
            "SELECT coalesce(max(batch_id), 0) FROM ingest_batches").fetchall()
        deadline = time.monotonic() + timeout_s
        self._wake.set()
        with self._analyzed:
            while self._through < target or self._forgetting:
                if self._thread is None and not self._lock.locked():
                    return False        # stopped: nothing will analyze it here
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._analyzed.wait(min(left, self.poll_s))
        return True

    def _cursor(self):
        """A cursor of the store's connection for this thread: the connection object itself
        is the writer's, and DuckDB's connections are not to be shared between threads."""
        return self.store.conn.cursor()

    def _chunk_done(self, cursor) -> None:
        self._note(persist.progress(cursor))
        self._ask_commit()

    def _ask_commit(self) -> None:
        """Ask the writer to commit what it holds, unless asked within `commit_every_s`."""
        if time.monotonic() - self._commit_asked >= self.commit_every_s:
            self._commit_asked = time.monotonic()
            self.commit()

    def _note(self, state: persist.Progress) -> None:
        with self._analyzed:
            self._through = max(self._through, state.analyzed_through)
            self._forgetting = state.forgetting
            self._analyzed.notify_all()

    def _compute(self, spans):
        pool = worker.executor()
        if pool is None:
            return persist.rows_of(spans)
        try:
            return pool.submit(persist.rows_of, spans).result()
        except BrokenProcessPool:
            worker.restart()    # the worker died (killed, out of memory): a fresh one next time
            raise

    def _run(self) -> None:
        name_os_thread()
        lower_thread_priority(NICENESS)
        while not self._stop.is_set():
            try:
                state = persist.progress(self.store.conn.cursor())
                self._note(state)
                if not state.current and not self.chunk_now():
                    pass        # exports come first; the tables catch up when memory allows
                elif not state.current:
                    self._ask_commit()      # so that the update takes what arrived meanwhile
                    committed = self._oldest_waiting(state.analyzed_through)
                    self.update_now()
                    if committed is not None:
                        self.lag_s.append(time.time() - committed)
                elif self._types_stale and self._types_due():
                    self.update_now(types=True)
                else:
                    self._ask_commit()      # caught up: what the writer holds is next
                self.failures = 0
            except Exception as exc:  # noqa: BLE001 - the tables stay as the last update left them
                self.failures += 1
                log.error("updating the analysis tables failed (%s); trying again in %g s",
                          exc, RETRY_S)
                self._stop.wait(RETRY_S)
                continue
            self._wake.wait(self.poll_s)
            self._wake.clear()

    def _oldest_waiting(self, through: int) -> float | None:
        """When the oldest batch not yet analyzed was written (seconds since the epoch)."""
        [(received,)] = self.store.conn.cursor().execute(
            "SELECT epoch_ns(min(received_at)) FROM ingest_batches WHERE batch_id > ?",
            [through]).fetchall()
        return None if received is None else received / 1e9
