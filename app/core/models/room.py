"""Room for one more model: the registry's memory budget, applied before each load."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from localoip.app.core.memory import resident_bytes
from localoip.app.core.models.budget import DoesNotFit, Resident, files_bytes, mib, to_unload
from localoip.app.core.models.lifecycle import Lifecycle
from localoip.app.core.state import ModelState
from localoip.runtimes.sources.source import is_present

log = logging.getLogger("localoip")


class Room:
    """`[server] max_loaded_models` and `max_memory` over a set of models' lifecycles.

    One load decides at a time. A model that is loading counts as busy; a READY one with
    nothing queued or running, and no lifecycle change under way, may be unloaded."""

    def __init__(self, max_models: int | None, max_bytes: int | None) -> None:
        self.max_models = max_models
        self.max_bytes = max_bytes
        self.lives: list[Lifecycle] = []
        self._deciding = asyncio.Lock()

    def watch(self, lives: Iterable[Lifecycle]) -> None:
        """Apply the budget to the local ones of these models."""
        for life in lives:
            if life.supervisor.local:
                self.lives.append(life)
                life.make_room = self.make_room

    def at_start(self, lives: list[Lifecycle]) -> list[Lifecycle]:
        """Of the models to load at start-up, those that fit, in config order; the others
        are left to load on their first request."""
        fitting: list[Lifecycle] = []
        taken: list[Resident] = []
        for life in lives:
            if life not in self.lives:
                fitting.append(life)
                continue
            need = self.need(life)
            try:
                to_unload(life.name, need, taken, self.max_models, self.max_bytes)
            except DoesNotFit:
                life.unloaded_until_asked(
                    f"not loaded at start-up: the budget is full ({self._limits()}); "
                    "loads on the first request"
                )
                continue
            fitting.append(life)
            taken.append(Resident(life.name, need, 0.0, idle=False))
        return fitting

    async def make_room(self, life: Lifecycle, evict: bool) -> None:
        """Unload idle models, least recently used first, until `life` fits; or, without
        `evict`, refuse when any would have to go. Raises DoesNotFit."""
        async with self._deciding:
            residents = [self._resident(other) for other in self.lives if self._holds(other, life)]
            need = self.need(life)
            names = to_unload(life.name, need, residents, self.max_models, self.max_bytes)
            if names and not evict:
                raise DoesNotFit(
                    f"not loaded at start-up: the budget is full ({self._limits()}); "
                    "loads on the first request"
                )
            for other in self.lives:
                if other.name in names:
                    log.info("model %r: unloading to make room for %r", other.name, life.name)
                    why = f"unloaded to make room for {life.name!r}; loads on the next request"
                    await other.unload(why)

    def _limits(self) -> str:
        limits = [f"max_loaded_models = {self.max_models}"] if self.max_models else []
        if self.max_bytes:
            limits.append(f"max_memory = {mib(self.max_bytes)}")
        return ", ".join(limits)

    @staticmethod
    def _holds(other: Lifecycle, life: Lifecycle) -> bool:
        return other is not life and (
            other.runtime is not None or other.state is ModelState.LOADING
        )

    def _resident(self, life: Lifecycle) -> Resident:
        pid = life.supervisor.pid(life.runtime)
        rss = resident_bytes(pid) if pid else None
        idle = (
            life.state is ModelState.READY
            and life.turns.pending == 0
            and not life.turns.lock.locked()
        )
        # A loading runner's RSS is still growing: count what it will hold.
        size = max(rss or 0, self.need(life))
        return Resident(life.name, size, life.turns.last_used, idle)

    @staticmethod
    def need(life: Lifecycle) -> int:
        """The bytes a model will hold: what its runner held last time, else its files."""
        if life.last_rss:
            return life.last_rss
        present, where = is_present(life.spec.source, life.spec.runtime)
        return files_bytes(where) if present else 0
