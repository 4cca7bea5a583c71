"""The memory budget: which idle models to unload so that one more fits.

`[server] max_loaded_models` counts local models (each a runner process); `max_memory`
counts their resident memory: a loaded model's runner RSS, and for one about to load, the
RSS it had when it last ran, or else the size of its files. Remote models cost neither.
Like Ollama's OLLAMA_MAX_LOADED_MODELS, the least recently used idle model goes first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


def mib(size: int) -> str:
    return f"{size / 2**20:,.0f} MiB"


def files_bytes(path: str) -> int:
    """The size of a file, or of every file in a folder; 0 when there is none."""
    where = Path(path)
    if where.is_file():
        return where.stat().st_size
    if where.is_dir():
        return sum(p.stat().st_size for p in where.rglob("*") if p.is_file())
    return 0


@dataclass(frozen=True, slots=True)
class Resident:
    """A local model that holds memory now (loaded or loading)."""

    name: str
    size: int  # bytes
    last_used: float  # monotonic seconds
    idle: bool  # READY with nothing queued or running: it may be unloaded


class DoesNotFit(Exception):
    """Even with every idle model unloaded, the budget has no room; the message says why."""


def to_unload(
    name: str,
    need: int,
    residents: Sequence[Resident],
    max_models: int | None,
    max_bytes: int | None,
) -> list[str]:
    """The models to unload, least recently used first, so that `name` (about `need` bytes)
    fits beside the rest. Raises DoesNotFit."""
    count, used = len(residents), sum(r.size for r in residents)

    def fits() -> bool:
        return (max_models is None or count < max_models) and (
            max_bytes is None or used + need <= max_bytes
        )

    chosen: list[str] = []
    for resident in sorted((r for r in residents if r.idle), key=lambda r: r.last_used):
        if fits():
            break
        chosen.append(resident.name)
        count, used = count - 1, used - resident.size
    if fits():
        return chosen
    if max_bytes is not None and need > max_bytes:
        raise DoesNotFit(
            f"model {name!r} needs about {mib(need)}, more than max_memory ({mib(max_bytes)})"
        )
    busy = sorted(r.name for r in residents if not r.idle)
    limits = [f"max_loaded_models = {max_models}"] if max_models is not None else []
    if max_bytes is not None:
        limits.append(f"max_memory = {mib(max_bytes)}, {mib(used)} in use")
    raise DoesNotFit(
        f"model {name!r} (about {mib(need)}) does not fit while {', '.join(busy)} "
        f"{'is' if len(busy) == 1 else 'are'} busy ({'; '.join(limits)}); retry when one is idle"
    )
