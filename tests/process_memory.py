"""Resident memory of a process and its descendants (read through `tracekit.procfs`)."""

from __future__ import annotations

import threading

from tracekit import procfs


def descendants(pid: int) -> set[int]:
    """The processes started by `pid`, and by those, and so on."""
    return set(procfs.process_tree(pid)) - {pid}


def rss_mib(pid: int) -> float:
    """RSS of `pid` and every process below it, in MiB."""
    return procfs.total_mib(procfs.process_tree(pid), lambda p: procfs.status_kib(p, "VmRSS"))


def pss_mib(pid: int) -> float:
    """Proportional resident memory of `pid` and every process below it, in MiB (shared
    library pages split among the processes mapping them, so they count once in the sum)."""
    return procfs.total_mib(procfs.process_tree(pid), procfs.pss_kib)


class PeakRss:
    """Samples `measure(pid)` (default RSS) every `interval_s` in a thread until stopped;
    `.start` and `.peak` in MiB."""

    def __init__(self, pid: int, interval_s: float = 0.02, measure=rss_mib) -> None:
        self.pid, self.interval_s, self.measure = pid, interval_s, measure
        self.start = self.peak = measure(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.peak = max(self.peak, self.measure(self.pid))

    def __enter__(self) -> "PeakRss":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.measure(self.pid))
