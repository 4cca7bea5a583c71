"""Give freed memory back to the operating system, so unloading a model lowers the RSS."""

from __future__ import annotations

import ctypes
import ctypes.util


def trim_heap() -> None:
    """Return free heap pages to the OS (glibc's malloc_trim); elsewhere, a no-op."""
    name = ctypes.util.find_library("c")
    if name is None:
        return
    libc = ctypes.CDLL(name)
    if hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)
