"""Memory: sizes as models.toml writes them, freed heap given back to the OS, a process's
resident size."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import re

UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
UNITS |= {f"{u}i": 2 ** (10 * i) for i, u in enumerate("kmgt", 1)}
SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([kmgt]i?)?b?\s*$", re.IGNORECASE)
SHARE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*%\s*$")


def physical_memory() -> int:
    """This machine's RAM in bytes."""
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def memory_bytes(value: int | str | None) -> int | None:
    """`max_memory` in bytes: an integer of bytes, a size ("12GiB", "512 MiB", "1.5GB"), or a
    share of RAM ("75%"). None: no limit. Raises ValueError for anything else."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        if value > 0:
            return value
    elif isinstance(value, str):
        if share := SHARE.match(value):
            percent = float(share[1])
            if 0 < percent <= 100:
                return int(physical_memory() * percent / 100)
        elif size := SIZE.match(value):
            total = int(float(size[1]) * UNITS[(size[2] or "").lower()])
            if total > 0:
                return total
    raise ValueError(
        f"max_memory {value!r} is not a size such as 12884901888, '12GiB', '512MiB' or '75%'"
    )


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
