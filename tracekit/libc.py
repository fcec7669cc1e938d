"""The process's C library through ctypes, loaded once: for the few calls Python has no
wrapper for (naming OS threads, handing freed memory back to the system)."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools


@functools.cache
def libc() -> ctypes.CDLL | None:
    """The C library, or None where it cannot be loaded. Cached: `find_library` runs
    `ldconfig -p` in a child process each time it is called."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def release_freed_memory() -> None:
    """Hand the heap memory glibc keeps after frees back to the system (malloc_trim);
    elsewhere nothing happens."""
    c = libc()
    if c is not None and hasattr(c, "malloc_trim"):
        c.malloc_trim(0)


__all__ = ["libc", "release_freed_memory"]
