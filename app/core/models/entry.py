"""The way into a model for each request (its one check, the load it waits for, its turn),
and a remote model's calls made on the event loop, with no worker thread between."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from typing import Any, TypeVar

from localoip.app.core.disconnect import unless_client_gone
from localoip.app.core.errors import CapabilityMissing, ModelNotReady
from localoip.app.core.models.status import ModelStatus
from localoip.runtimes.capabilities import Capability, Runtime, UpstreamError

log = logging.getLogger("localoip")
T = TypeVar("T")


class Entry(ModelStatus):
    """Each request's way in, for ModelHandle (handle.py): require(), _awake(), _turn();
    and call_here() and items_here(), a remote model's asyncio calls in turn."""

    served_once: bool  # a request has been served: the first one is logged

    def require(self, capability: Capability) -> None:
        """Refuse, before any work, a request this model cannot serve: the one check of its
        capability and state that each request makes.

        Raises CapabilityMissing (400), ModelCrashed or ModelNotReady (503)."""
        if capability not in self.capabilities:
            can = ", ".join(sorted(self.capabilities))
            raise CapabilityMissing(
                f"model {self.name!r} cannot do {capability}; it can do: {can}", "model"
            )
        if self.life.crashed_out or not self.servable:
            raise self.life.unavailable()

    async def _awake(self, capability: Capability) -> Runtime:
        """The loaded runtime, loading it first if it waits for a request.

        Raises ModelCrashed or ModelNotReady (503) when the load fails."""
        runtime = await self.life.awake()
        if not self.served_once:  # logged before the call: a native crash leaves this line last
            self.served_once = True
            log.info("model %r: first %s request", self.name, capability)
        return runtime

    async def _turn(self, runtime: Runtime) -> None:
        """Wait for the model's turn (FIFO) and hold it; the caller starts its work next (see
        Turns), which gives the turn up when it ends. Raises ModelCrashed or ModelNotReady
        when `runtime` went meanwhile (an unload, a crash)."""
        await self.turns.acquire()
        if self.runtime is not runtime:
            self.turns.release()
            if self.life.crashed_out:
                raise self.life.unavailable()
            raise ModelNotReady(f"model {self.name!r} was unloaded", "model")

    async def call_here(self, capability: Capability, fn: Callable[[Any], Awaitable[T]]) -> T:
        """Await fn(runtime) on the event loop, in turn (a remote model's asyncio call, such
        as a relayed infer); a client that goes away cancels it, which frees its place at
        once. Raises as require() does, and what fn raises."""
        self.require(capability)
        async with self.turns.admitted():
            runtime = await self._awake(capability)
            await self._turn(runtime)
            with self.turns.here():
                try:
                    return await unless_client_gone(fn(runtime))
                except UpstreamError as exc:
                    self.life.upstream_lost(exc)
                    raise

    def items_here(
        self, capability: Capability, fn: Callable[[Any], AsyncIterator[T]]
    ) -> AsyncIterator[T]:
        """Items of fn(runtime) as they come, on the event loop, in turn (a remote model's
        relayed stream); checked here, so a request it cannot serve raises before any item
        is asked for. Closing it early ends fn's iterator and frees the place."""
        self.require(capability)
        return self._items_here(capability, fn)

    async def _items_here(
        self, capability: Capability, fn: Callable[[Any], AsyncIterator[T]]
    ) -> AsyncIterator[T]:
        async with self.turns.admitted():
            runtime = await self._awake(capability)
            await self._turn(runtime)
            with self.turns.here():
                try:
                    async with aclosing(fn(runtime)) as items:
                        async for item in items:
                            yield item
                except UpstreamError as exc:
                    self.life.upstream_lost(exc)
                    raise
