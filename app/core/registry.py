"""The registry: every configured model's handle, by name."""

from __future__ import annotations

import asyncio

from localoip.app.core.config import ModelSpec, ServerSettings
from localoip.app.core.errors import ModelNotFound, ModelNotReady
from localoip.app.core.memory import memory_bytes
from localoip.app.core.metrics import Metrics, note_model
from localoip.app.core.models.handle import ModelHandle
from localoip.app.core.models.lifecycle import Lifecycle
from localoip.app.core.models.room import Room
from localoip.app.core.runners.base import RunnerKind
from localoip.app.core.state import ModelState

FIRST_REQUEST = "not loaded yet; loads on the first request"


class Registry:
    """All configured models, by name, loaded at start-up or on demand within the budget
    of `[server]` (see models/room.py); local ones each in a runner of the kind `runners`
    names (see runners/base.py)."""

    def __init__(
        self,
        specs: tuple[ModelSpec, ...],
        metrics: Metrics | None = None,
        server: ServerSettings | None = None,
        runners: RunnerKind = "process",
    ) -> None:
        server = server or ServerSettings()
        self.metrics = metrics or Metrics()
        self.models = {
            spec.name: ModelHandle(spec, self.metrics, runners, server.restart_delay)
            for spec in specs
        }
        self.on_demand = server.load == "on-demand"
        max_bytes = memory_bytes(server.max_memory)
        self.room: Room | None = None
        if server.max_loaded_models is not None or max_bytes is not None:
            self.room = Room(server.max_loaded_models, max_bytes)
            self.room.watch(h.life for h in self.models.values())
        self._starting: list[Lifecycle] = []
        self.metrics.watch(self.models.values)

    def get(self, name: str) -> ModelHandle:
        """Model `name`'s handle; ModelNotFound (404), naming the configured ones, if none."""
        try:
            note_model(name)
            return self.models[name]
        except KeyError:
            known = ", ".join(self.models) or "none"
            raise ModelNotFound(
                f"unknown model {name!r}; configured models: {known}", "model"
            ) from None

    @property
    def settled(self) -> bool:
        """True once no model is loading."""
        return all(h.state is not ModelState.LOADING for h in self.models.values())

    def mark_loading(self) -> None:
        """Choose the models that load at start-up (all, or on demand only the remote ones,
        and within the budget in config order) and set them LOADING before the background
        load starts, so readiness waits for them; the others wait for their first request."""
        lives = []
        for handle in self.models.values():
            if self.on_demand and handle.supervisor.local:
                handle.life.unloaded_until_asked(FIRST_REQUEST)
            else:
                lives.append(handle.life)
        self._starting = self.room.at_start(lives) if self.room else lives
        for life in self._starting:
            life.state = ModelState.LOADING

    async def load_all(self) -> None:
        """Load the models mark_loading chose at once, each local one in its own runner."""
        await asyncio.gather(*(life.load(evict=False) for life in self._starting))

    async def load(self, name: str) -> None:
        """(Re)load model `name` now, as OIP's repository and the Models tab ask. ModelNotFound
        (404) for an unknown name; ModelNotReady (503), with the reason, if it fails to load."""
        handle = self.get(name)
        await handle.load()
        if handle.state is not ModelState.READY:
            raise ModelNotReady(f"model {name!r} failed to load: {handle.reason}")

    async def unload(self, name: str) -> None:
        """Unload model `name` until it is loaded again; ModelNotFound (404) for an unknown one."""
        await self.get(name).unload()

    async def unload_all(self) -> None:
        await asyncio.gather(*(handle.unload() for handle in self.models.values()))
