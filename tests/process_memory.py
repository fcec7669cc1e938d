"""Resident memory of a process and its descendants, read from /proc (Linux)."""

from __future__ import annotations

import threading
from pathlib import Path


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        tree.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    return tree


def _tree(pid: int) -> list[int]:
    tree, found, todo = _children(), [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(tree.get(current, []))
    return found


def descendants(pid: int) -> set[int]:
    """The processes started by `pid`, and by those, and so on."""
    return set(_tree(pid)) - {pid}


def _field_kib(path: str, name: str) -> int:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(name):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_mib(pid: int) -> float:
    """RSS of `pid` and every process below it, in MiB."""
    return sum(_field_kib(f"/proc/{p}/status", "VmRSS:") for p in _tree(pid)) / 1024


def pss_mib(pid: int) -> float:
    """Proportional resident memory of `pid` and every process below it, in MiB (shared
    library pages split among the processes mapping them, so they count once in the sum)."""
    return sum(_field_kib(f"/proc/{p}/smaps_rollup", "Pss:") for p in _tree(pid)) / 1024


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
