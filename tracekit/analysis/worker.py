"""Where the analysis tables are computed: here, or in a worker process a long-lived process
(the collector) provides so that its own work keeps the CPU. Light to import on purpose."""

from __future__ import annotations

import threading

_lock = threading.Lock()
_factory = None     # () -> concurrent.futures.Executor
_executor = None


def run_in_worker(factory) -> None:
    """Use the executor `factory()` makes (on first use) from now on; None: compute here."""
    global _factory, _executor
    with _lock:
        if _executor is not None:
            _executor.shutdown(wait=False, cancel_futures=True)
        _factory, _executor = factory, None


def executor():
    """The worker executor, started on first use, or None."""
    global _executor
    with _lock:
        if _executor is None and _factory is not None:
            _executor = _factory()
        return _executor


def restart() -> None:
    """Replace a broken worker: the next `executor()` starts a fresh one."""
    global _executor
    with _lock:
        if _executor is not None:
            _executor.shutdown(wait=False, cancel_futures=True)
        _executor = None


def pids() -> list[int]:
    """The worker's process ids (none before it starts): its memory is the collector's too."""
    with _lock:
        pool = _executor
    processes = getattr(pool, "_processes", None) or {}
    return list(processes)
