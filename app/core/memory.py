"""Process memory: give freed heap back to the OS, and read a process's resident size."""

from __future__ import annotations

import ctypes
import ctypes.util
import os


def trim_heap() -> None:
    """Return free heap pages to the OS (glibc's malloc_trim); elsewhere, a no-op."""
    name = ctypes.util.find_library("c")
    if name is None:
        return
    libc = ctypes.CDLL(name)
    if hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


def resident_bytes(pid: int) -> int | None:
    """A process's resident memory (RSS), from /proc; None where there is no /proc or no pid."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")
