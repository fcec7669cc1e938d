"""Retention: old data leaves the store in the background, without stalling ingest.

By age (`--retention 7d`: rows received more than that ago) and/or by size (`--max-size 10GB`:
the oldest rows, a tenth at a time, while the store uses more). Rows are deleted a few batches
per transaction on a cursor of their own, so the writer's commits go on meanwhile (DuckDB runs
the two transactions side by side: appends and deletes of other rows do not conflict). Age is
the time the collector received the rows (their batch), not the spans' own timestamps, which
a client's clock may have wrong.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import duckdb

from tracekit import queries
from tracekit.threads import name_os_thread
from tracekit.writable import WritableStore
from tracekit.writer import Writer

log = logging.getLogger(__name__)

BATCHES_PER_TRANSACTION = 200
SIZE_STEP = 0.10        # share of the rows removed per pass while over --max-size
CHECKPOINT_WAIT_S = 30.0


@dataclass(frozen=True)
class RetentionSettings:
    max_age_s: float | None = None
    max_size_bytes: int | None = None
    check_every_s: float = 60.0

    @property
    def enabled(self) -> bool:
        return bool(self.max_age_s or self.max_size_bytes)


class Retention:
    """A thread that enforces RetentionSettings on the store every `check_every_s`."""

    def __init__(self, store: WritableStore, settings: RetentionSettings,
                 writer: Writer | None = None) -> None:
        self.store = store
        # Checkpoints go through the writer, which runs them between its own transactions.
        self.writer = writer
        self.settings = settings
        self.deleted_spans = 0
        self.deleted_logs = 0
        self.passes = 0
        self._deleted_through = 0          # batches up to here have no rows left
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tracekit-retain", daemon=True)

    def start(self) -> Retention:
        if self.settings.enabled:
            self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        name_os_thread()
        while not self._stop.wait(self.settings.check_every_s):
            try:
                self.run_once()
            except duckdb.Error as exc:      # e.g. the store closing under it; try next time
                log.warning("retention pass failed (retried in %.0f s): %s",
                            self.settings.check_every_s, exc)

    def run_once(self) -> None:
        """One pass: delete what is too old, then the oldest while the store is too big."""
        cursor = self.store.conn.cursor()
        try:
            if self.passes == 0:      # where earlier runs left off: below the oldest row kept
                [(oldest,)] = cursor.execute(queries.load("retention/oldest_kept")).fetchall()
                self._deleted_through = max(0, int(oldest) - 1) if oldest is not None else 0
            if self.settings.max_age_s:
                cutoff = datetime.now(timezone.utc) - timedelta(seconds=self.settings.max_age_s)
                [(through,)] = cursor.execute(queries.load("retention/expired_batch"),
                                              {"cutoff": cutoff}).fetchall()
                if through is not None and through > self._deleted_through:
                    self._delete_through(cursor, int(through), "older than the retention")
            if self.settings.max_size_bytes:
                for _ in range(int(1 / SIZE_STEP)):
                    if self._used_bytes(cursor) <= self.settings.max_size_bytes or self._stop.is_set():
                        break
                    [(through,)] = cursor.execute(queries.load("retention/oldest_batches"),
                                                  {"after": self._deleted_through,
                                                   "share": SIZE_STEP}).fetchall()
                    if through is None:
                        break
                    self._delete_through(cursor, int(through), "over the size limit")
                    if not self._checkpoint(cursor):   # so that the freed blocks count as free
                        break
            self.passes += 1
        finally:
            cursor.close()

    def _checkpoint(self, cursor) -> bool:
        """Fold the log and the deletes into the file; False if that must wait."""
        try:
            if self.writer is not None:
                return self.writer.checkpoint(CHECKPOINT_WAIT_S)
            cursor.execute("CHECKPOINT")
        except duckdb.Error as exc:          # a commit in progress: next time
            log.debug("retention checkpoint deferred: %s", exc)
            return False
        return True

    def _used_bytes(self, cursor) -> int:
        [(used,)] = cursor.execute(queries.load("retention/used_bytes")).fetchall()
        wal = f"{self.store.path}.wal"
        return int(used or 0) + (os.path.getsize(wal) if os.path.exists(wal) else 0)

    def _delete_through(self, cursor, through: int, why: str) -> None:
        started, spans, logs = time.perf_counter(), 0, 0
        after = self._deleted_through
        while after < through and not self._stop.is_set():
            upto = min(through, after + BATCHES_PER_TRANSACTION)
            cursor.execute("BEGIN")
            try:
                params = {"after": after, "through": upto}
                cursor.execute(queries.load("retention/forget_traces"), params)
                spans += cursor.execute(queries.load("retention/delete_spans"), params).fetchall()[0][0]
                logs += cursor.execute(queries.load("retention/delete_logs"), params).fetchall()[0][0]
                cursor.execute("COMMIT")
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
            after = self._deleted_through = upto
        self.deleted_spans += spans
        self.deleted_logs += logs
        log.info("retention: deleted %d spans and %d logs %s (batches through %d) in %.1f s",
                 spans, logs, why, after, time.perf_counter() - started)
