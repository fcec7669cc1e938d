"""Thread names the operating system sees, so `top -H`, `ps -L`, `perf` and
`/proc/<pid>/task/*/comm` tell a collector's threads apart (the intake, the mover, the
commits, the memory guard, gRPC's handlers) instead of showing each as the process.

Python names a thread only for itself (`threading.Thread.name`); CPython before 3.14 leaves
the OS name as the process's. Linux keeps 15 bytes of it.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading

from tracekit.libc import libc

PR_SET_NAME = 15      # prctl(2)
OS_NAME_BYTES = 15    # TASK_COMM_LEN less the terminating NUL


def os_thread_name(name: str) -> bytes:
    """What the OS keeps of `name`: its first 15 bytes of UTF-8, not cutting a character."""
    return name.encode()[:OS_NAME_BYTES].decode(errors="ignore").encode()


def name_os_thread(name: str | None = None) -> None:
    """Give the calling thread its Python name (or `name`) at the OS level too (Linux;
    elsewhere, or if the call fails, nothing happens: the name only helps people look). Call
    it first in a thread's target, or pass it as a ThreadPoolExecutor's `initializer`; in a
    worker process's main thread it names the process as `ps` shows it."""
    c = libc() if sys.platform.startswith("linux") else None
    if c is not None:
        wanted = name or threading.current_thread().name
        c.prctl(PR_SET_NAME, ctypes.c_char_p(os_thread_name(wanted)), 0, 0, 0)


def lower_thread_priority(niceness: int) -> None:
    """Run the calling thread at nice `niceness` at least (Linux: a thread's nice value is its
    own). Background work that can lag, such as the analysis, then takes only the CPU the
    threads that acknowledge exports leave. Elsewhere, or if refused, nothing happens."""
    if sys.platform.startswith("linux"):
        try:
            tid = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, tid, max(niceness, os.getpriority(os.PRIO_PROCESS, tid)))
        except OSError:
            pass


__all__ = ["lower_thread_priority", "name_os_thread", "os_thread_name"]
