"""A model's lifecycle by hand: load, unload, Ollama's loaded-now, keep_alive and sleep."""

from __future__ import annotations

from localoip.app.core.models.lifecycle import Lifecycle
from localoip.app.core.state import IDLE, ModelState


class Controls:
    """The lifecycle calls of ModelHandle (handle.py), over its Lifecycle."""

    life: Lifecycle

    async def load(self, evict: bool = True) -> None:
        """(Re)load the model: READY, or not with the reason; never raises. See Lifecycle."""
        await self.life.load(evict)

    async def unload(self) -> None:
        await self.life.unload()

    async def loaded(self) -> None:
        """Loaded now, loading it first if need be (a model unloaded by hand too), as Ollama
        loads a model for a request with an empty prompt. Raises ModelCrashed or
        ModelNotReady (503) when it is not loaded after that."""
        life = self.life
        if life.runtime is None and not life.wakes and life.state is not ModelState.LOADING:
            await life.load()
        await life.awake()

    def keep_alive(self, seconds: float | None) -> None:
        """Ollama's per-request keep_alive: see Idle.keep (idle.py)."""
        self.life.idle.keep(seconds)

    async def sleep(self) -> None:
        """Unload now; the next request loads it again (Ollama's `keep_alive: 0`)."""
        await self.life.unload(IDLE)
