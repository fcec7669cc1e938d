"""The one reader of /proc (Linux): a process's memory, CPU time, threads and children.

The collector's memory guard (`collectors.admission`) and the benchmarks and tests that
measure a collector read processes through these functions. Each raises OSError when the
process (or thread) is gone or /proc is not there; callers decide what that means.
"""

from __future__ import annotations

import os
from pathlib import Path

PROC = Path("/proc")


def available() -> bool:
    """Whether this system has /proc (Linux)."""
    return (PROC / "self" / "statm").exists()


def status_kib(pid: int | str, field: str) -> int:
    """A KiB figure of /proc/PID/status: "VmRSS" (resident now), "VmHWM" (its peak); 0 if absent."""
    for line in (PROC / str(pid) / "status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def rss_kib(pid: int | str) -> int:
    """Resident memory, from /proc/PID/statm (cheaper to read than status)."""
    pages = int((PROC / str(pid) / "statm").read_text().split()[1])
    return pages * (os.sysconf("SC_PAGE_SIZE") // 1024)


def pss_kib(pid: int | str) -> int:
    """Proportional resident memory (shared pages split among the processes mapping them, so
    a sum over processes counts them once); the RSS where the kernel gives no rollup."""
    with open(PROC / str(pid) / "smaps_rollup") as rollup:
        for line in rollup:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return rss_kib(pid)


def total_mib(pids: list[int], read) -> float:
    """`read` (a process's KiB: `rss_kib`, `pss_kib`) summed over `pids`, in MiB; a process
    gone meanwhile counts 0."""
    kib = 0
    for pid in pids:
        try:
            kib += read(pid)
        except (OSError, ValueError, IndexError):
            continue     # gone
    return kib / 1024


def reset_peak() -> None:
    """Start this process's peak resident memory (VmHWM) afresh."""
    (PROC / "self" / "clear_refs").write_text("5")


def cpu_seconds(pid: int | str, tid: int | str | None = None) -> float:
    """utime + stime of a process (its ended threads included), or of one of its threads."""
    stat = PROC / str(pid) / ("stat" if tid is None else f"task/{tid}/stat")
    fields = stat.read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def name(pid: int | str, tid: int | str | None = None) -> str:
    """The name the OS shows for a process, or for one of its threads (`tracekit.threads`)."""
    return (PROC / str(pid) / ("comm" if tid is None else f"task/{tid}/comm")).read_text().strip()


def threads(pid: int | str) -> list[int]:
    """The ids of a process's threads (the first is the process's own)."""
    return [int(task.name) for task in (PROC / str(pid) / "task").iterdir()]


def children(pid: int | str) -> list[int]:
    """The processes `pid` started and that still run (any of its threads may have forked)."""
    found = []
    for tid in threads(pid):
        try:
            found += map(int, (PROC / str(pid) / "task" / str(tid) / "children").read_text().split())
        except OSError:   # a thread that ended meanwhile
            continue
    return found


def process_tree(pid: int) -> list[int]:
    """`pid`, the processes it started, those they started, and so on."""
    below: dict[int, list[int]] = {}
    for stat in PROC.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        below.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(below.get(current, []))
    return found
