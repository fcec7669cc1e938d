"""Admission: whether the collector takes another export now.

An export is refused, with an answer every OTLP exporter retries, before its body is read or
decoded when the writer's queue is full or the memory the collector uses (its own process and
its decode workers, proportional resident set) is near the configured limit. Refusing early is what keeps memory
flat while the writer is stalled: nothing waits in memory except what the queue may hold.
"""

from __future__ import annotations

import os
import threading
import time

import pyarrow as pa

from tracekit import procfs
from tracekit.errors import Overloaded
from tracekit.libc import libc
from tracekit.threads import name_os_thread
from tracekit.writer import Writer

# Refuse from this share of the limit: exports already admitted still need their room.
REFUSE_FROM = 0.85
# The analysis (collectors/analyst.py) sizes its work to stay below this share: what it takes
# beyond leaves exports in flight their room, and it never makes the guard refuse one.
ANALYSIS_UP_TO = 0.70
SAMPLE_EVERY_S = 0.1
PSS_EVERY_S = 1.0       # the longest an estimate from the RSS sum stands in for PSS


_M_MMAP_THRESHOLD = -3      # glibc mallopt parameter


def return_freed_memory_to_the_system() -> None:
    """glibc keeps freed heap memory for reuse, and after a large block (a 20 MiB request)
    is freed it raises its mmap threshold, so later large blocks come from the heap, which
    only shrinks from the top: resident memory stayed ~120 MiB up after three such exports
    and the guard refused everything. Large blocks are always mmapped (and unmapped when
    freed) from 1 MiB; call in every collector process at start.

    Arrow's buffers come from glibc too, not from pyarrow's default pool (mimalloc), which
    kept the freed buffers of the writer's intake and mover threads: the collector's peak PSS
    was 402 MiB against 372 with glibc (gRPC, 4 exports, 3 runs each, ingest within noise)."""
    c = libc()
    if c is not None and hasattr(c, "mallopt"):
        c.mallopt(_M_MMAP_THRESHOLD, 1 << 20)
    pa.set_memory_pool(pa.system_memory_pool())


def trim_heap() -> None:
    """Hand the heap's free pages back to the system (glibc malloc_trim)."""
    c = libc()
    if c is not None and hasattr(c, "malloc_trim"):
        c.malloc_trim(0)


class MemoryGuard:
    """Samples the resident memory of the collector and its workers in a thread."""

    def __init__(self, limit_mib: int, worker_pids=lambda: []) -> None:
        self.limit_mib = limit_mib
        self.worker_pids = worker_pids
        self.resident_mib = 0.0
        self.peak_mib = 0.0
        # The last PSS read: (pids, PSS MiB, RSS sum MiB then, monotonic time).
        self._pss: tuple[list[int], float, float, float] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tracekit-memory", daemon=True)
        self.available = procfs.available()   # Linux; elsewhere: queue bounds only

    def start(self) -> MemoryGuard:
        if self.available and self.limit_mib > 0:
            self.sample()
            self._thread.start()
        return self

    def sample(self) -> float:
        """The memory the collector and its workers use, in MiB: their proportional resident
        memory (PSS: library pages shared by the collector and its workers count once in all,
        not once each). PSS costs ~1.5 ms a process to read, a tenth of a core at ten samples
        a second; the RSS sum, read from statm, costs ~nothing and is never below it. So PSS
        is read only when the RSS sum is over the threshold and the last PSS, plus what the
        RSS sum grew since (PSS grows no faster), is too, or at most PSS_EVERY_S old."""
        threshold = REFUSE_FROM * self.limit_mib
        pids = [os.getpid(), *self.worker_pids()]
        rss = procfs.total_mib(pids, procfs.rss_kib)
        last = self._pss
        if rss < threshold:
            used = rss
        elif (last is not None and last[0] == pids and time.monotonic() - last[3] < PSS_EVERY_S
              and (estimate := last[1] + max(0.0, rss - last[2])) < threshold):
            used = estimate
        else:
            used = self._read_pss(pids, rss)
            if used >= threshold:     # free memory the heap still holds, then look again
                trim_heap()
                used = self._read_pss(pids, procfs.total_mib(pids, procfs.rss_kib))
        self.resident_mib = used
        self.peak_mib = max(self.peak_mib, used)
        return used

    def _read_pss(self, pids: list[int], rss: float) -> float:
        pss = procfs.total_mib(pids, procfs.pss_kib)
        self._pss = (pids, pss, rss, time.monotonic())
        return pss

    def _run(self) -> None:
        name_os_thread()
        while not self._stop.wait(SAMPLE_EVERY_S):
            self.sample()

    def room_mib(self, share: float) -> float | None:
        """MiB left below `share` of the limit, from the collector's and its workers' PSS read
        now (~1.5 ms a process: for decisions made a few times a second, not per export);
        None when there is no limit."""
        if not (self.available and self.limit_mib > 0):
            return None
        pids = [os.getpid(), *self.worker_pids()]
        return share * self.limit_mib - self._read_pss(pids, procfs.total_mib(pids, procfs.rss_kib))

    @property
    def over(self) -> bool:
        return self.limit_mib > 0 and self.resident_mib >= REFUSE_FROM * self.limit_mib

    def stop(self) -> None:
        self._stop.set()


class Admission:
    """`check()` raises Overloaded when an export should be refused now."""

    def __init__(self, writer: Writer, memory: MemoryGuard) -> None:
        self.writer = writer
        self.memory = memory
        self.refused = 0

    def check(self) -> None:
        reason = self.writer.full()
        if reason is None and self.memory.over:
            reason = (f"the collector uses {self.memory.resident_mib:.0f} MiB of its "
                      f"{self.memory.limit_mib} MiB memory limit; retry later")
        if reason is not None:
            self.refused += 1
            raise Overloaded(reason, self.writer.limits.retry_after_s)
