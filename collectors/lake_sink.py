"""The collector's lake sink: a thread that ships what the writer commits to the lake.

Off the hot path: exports are acknowledged once in the local intake, as without a lake; every
`every_s` this thread ships the batches committed since the lake's watermark for this store
(tracekit.lake.shipping), at a lower CPU priority than ingest. When nothing new was committed
since its last look it asks the writer to commit what it holds (the writer otherwise waits for
a whole row group), so a batch reaches the lake within about two intervals plus a shipment.
At stop, after the writer has drained, it ships what is left, within the stop's timeout; what
is still left is shipped at the next start, from the watermark.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from tracekit.lake.location import LakeLocation
from tracekit.lake.shipping import Shipper
from tracekit.threads import lower_thread_priority, name_os_thread
from tracekit.writable import WritableStore

log = logging.getLogger("tracekit.collector")

EVERY_S = 10.0
NICENESS = 10
COMMIT_WAIT_S = 2.0   # how long a look waits for the writer's commit it asked for


class LakeSink:
    """`start()`, then `stop(timeout_s)` (safe twice)."""

    def __init__(self, store: WritableStore, location: LakeLocation, every_s: float = EVERY_S,
                 commit: Callable[[float], bool] = lambda timeout_s: True):
        self.store, self.every_s, self.commit = store, every_s, commit
        self.shipper = Shipper(location, store.path, lambda: self.store.conn.cursor())
        self.failures = 0
        self.lag_s: deque[float] = deque(maxlen=1000)   # per shipment: its duration
        self._stop = threading.Event()
        self._lock = threading.Lock()     # one shipment at a time (the thread's, or stop's)
        self._thread: threading.Thread | None = None
        self._seen_batch = -1

    def start(self) -> LakeSink:
        self._thread = threading.Thread(target=self._run, name="tracekit-lake", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the thread, then ship what the writer committed last (it has drained)."""
        if self._thread is None:
            return
        deadline = time.monotonic() + timeout_s
        self._stop.set()
        self._thread.join(timeout_s)
        self._thread = None
        if timeout_s <= 0:
            return
        started = time.monotonic()
        try:
            with self._lock:
                self.shipper.ship(should_stop=lambda: time.monotonic() > deadline)
        except Exception as exc:  # noqa: BLE001 - the next start ships from the watermark
            log.warning("shipping to the lake at stop failed (the next start ships what is "
                        "left): %s", exc)
        log.info("lake: shipped %d spans, %d logs, %d resources in %d commits as %s; the last "
                 "shipment took %.1f s", self.shipper.shipped["span_rows"],
                 self.shipper.shipped["log_rows"], self.shipper.shipped["resources"],
                 self.shipper.commits, self.shipper.collector_id, time.monotonic() - started)

    def _run(self) -> None:
        name_os_thread()
        lower_thread_priority(NICENESS)
        while not self._stop.is_set():
            try:
                with self._lock:
                    newest = self.shipper.newest_batch()
                    if newest == self._seen_batch:   # quiet, or the writer holds a row group
                        self.commit(COMMIT_WAIT_S)
                    self._seen_batch = newest
                    started = time.monotonic()
                    if self.shipper.ship(should_stop=self._stop.is_set):
                        self.lag_s.append(time.monotonic() - started)
                self.failures = 0
            except Exception as exc:  # noqa: BLE001 - the lake is an extra sink: retry later
                self.failures += 1
                log.error("shipping to the lake failed (retrying in %g s; acknowledged data is "
                          "safe in the local store): %s", self.every_s, exc)
            self._stop.wait(self.every_s)
