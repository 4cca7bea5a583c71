"""The registry: every configured model's handle, by name."""

from __future__ import annotations

import asyncio

from localoip.app.config import ModelSpec
from localoip.app.errors import ModelNotFound
from localoip.app.metrics import Metrics, note_model
from localoip.app.models.handle import ModelHandle
from localoip.app.models.state import ModelState


class Registry:
    """All configured models, by name."""

    def __init__(self, specs: tuple[ModelSpec, ...], metrics: Metrics | None = None) -> None:
        self.metrics = metrics or Metrics()
        self.models = {spec.name: ModelHandle(spec, self.metrics) for spec in specs}
        self.metrics.watch(self)

    def get(self, name: str) -> ModelHandle:
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
        """Set every model LOADING before the background load starts, so readiness waits for it."""
        for handle in self.models.values():
            handle.state = ModelState.LOADING

    async def load_all(self) -> None:
        """Load every model at once, each in its own runner process."""
        await asyncio.gather(*(handle.load() for handle in self.models.values()))

    async def unload_all(self) -> None:
        await asyncio.gather(*(handle.unload() for handle in self.models.values()))
