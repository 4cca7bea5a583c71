"""Model lifecycle: states, background loading, load/unload, capability lookup, serialised calls."""

from __future__ import annotations

import asyncio
import enum
import importlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

from localoip.app.config import ModelSpec
from localoip.app.errors import CapabilityMissing, ModelNotFound, ModelNotReady
from localoip.runtimes.base import Capability, Runtime, UpstreamError
from localoip.runtimes.sources import resolve

log = logging.getLogger("localoip")
T = TypeVar("T")

RUNTIME_CLASSES = {
    "llama-cpp": "localoip.runtimes.llamacpp:LlamaCppRuntime",
    "sentence-transformers": "localoip.runtimes.sbert:SentenceTransformersRuntime",
    "diffusers": "localoip.runtimes.diffusion:DiffusersRuntime",
    "openai": "localoip.runtimes.openai_remote:OpenAIRemoteRuntime",
    "oip": "localoip.runtimes.oip_remote:OipRemoteRuntime",
}
"""Runtime classes by models.toml name, imported only when a model of that kind loads."""


class ModelState(enum.StrEnum):
    LOADING = "LOADING"
    READY = "READY"
    UNAVAILABLE = "UNAVAILABLE"
    UNLOADED = "UNLOADED"


def _runtime_class(name: str) -> type[Runtime]:
    module, _, attr = RUNTIME_CLASSES[name].partition(":")
    return getattr(importlib.import_module(module), attr)


class ModelHandle:
    """One configured model: its state, its runtime when loaded, and the lock that serialises it.

    llama.cpp crashes when two threads share a model, so every call on a runtime
    holds this model's lock and runs in a worker thread, off the event loop.
    """

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self.state = ModelState.UNLOADED
        self.reason = ""
        self.load_seconds: float | None = None
        self.runtime: Runtime | None = None
        self._lock = asyncio.Lock()
        self._retry: asyncio.TimerHandle | None = None
        self._retrying: asyncio.Task | None = None  # held so the running retry is not collected

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def capabilities(self) -> frozenset[Capability]:
        return self.spec.options.capabilities()

    def require(self, capability: Capability) -> Runtime:
        """The loaded runtime, if it has the capability and is ready."""
        if capability not in self.capabilities:
            can = ", ".join(sorted(self.capabilities))
            raise CapabilityMissing(
                f"model {self.name!r} cannot do {capability}; it can do: {can}", "model"
            )
        if self.state is not ModelState.READY or self.runtime is None:
            why = f": {self.reason}" if self.reason else ""
            raise ModelNotReady(f"model {self.name!r} is not ready ({self.state}{why})", "model")
        return self.runtime

    async def _run_locked(
        self, capability: Capability, fn: Callable[[Any], T]
    ) -> asyncio.Future[T]:
        """Take this model's lock and start fn(runtime) in a worker thread that frees it.

        The thread, not the caller, releases the lock when it ends. A thread cannot be
        cancelled, and a caller can be (a client that hung up): this way no second call
        ever shares the model with a thread that is still running, which crashes llama.cpp.
        """
        await self._lock.acquire()
        try:
            runtime = self.require(capability)
        except BaseException:
            self._lock.release()
            raise
        loop = asyncio.get_running_loop()

        def run() -> T:
            try:
                return fn(runtime)
            finally:
                loop.call_soon_threadsafe(self._lock.release)

        return loop.run_in_executor(None, run)

    async def idle(self) -> None:
        """Wait until no worker thread holds the model (a stopped stream ends within a token)."""
        async with self._lock:
            pass

    async def call(self, capability: Capability, fn: Callable[[Any], T]) -> T:
        """Call fn(runtime) in a worker thread, holding this model's lock."""
        self.require(capability)
        work = await self._run_locked(capability, fn)
        try:
            return await work
        except UpstreamError as exc:
            self._upstream_lost(exc)
            raise

    async def stream(
        self, capability: Capability, make_iter: Callable[[Any], Iterator[T]]
    ) -> AsyncIterator[T]:
        """Walk make_iter(runtime) in a worker thread, holding the lock until it ends.

        When the consumer stops early (a client disconnect), the worker stops at the
        next item and then frees the model; nothing here awaits, so a cancelled
        consumer cannot cut that short.
        """
        self.require(capability)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[bool, Any]] = asyncio.Queue()
        stop = threading.Event()

        def work(runtime: Any) -> None:
            try:
                iterator = make_iter(runtime)
                try:
                    for item in iterator:
                        if stop.is_set():
                            break
                        loop.call_soon_threadsafe(queue.put_nowait, (False, item))
                finally:
                    close = getattr(iterator, "close", None)
                    if close is not None:
                        close()
            except BaseException as exc:  # handed to the consumer, raised there
                loop.call_soon_threadsafe(queue.put_nowait, (True, exc))
            else:
                loop.call_soon_threadsafe(queue.put_nowait, (True, None))

        await self._run_locked(capability, work)
        done = False
        try:
            while not done:
                done, item = await queue.get()
                if done and item is not None:
                    if isinstance(item, UpstreamError):
                        self._upstream_lost(item)
                    raise item
                if not done:
                    yield item
        finally:
            if not done:
                log.info("model %r: stream stopped early; the client went away", self.name)
            stop.set()

    async def load(self) -> None:
        """(Re)load the model; failures leave it UNAVAILABLE with the reason, never raise."""
        async with self._lock:
            self._cancel_retry()
            self.state, self.reason = ModelState.LOADING, ""
            await asyncio.to_thread(self._unload_runtime)
            await self._start()

    async def _start(self, retrying: bool = False) -> None:
        """Load the runtime: READY, or UNAVAILABLE with the reason. Holds the lock."""
        start = time.perf_counter()
        try:
            self.runtime = await asyncio.to_thread(self._load_runtime)
        except Exception as exc:
            reason = str(exc) or type(exc).__name__
            if not retrying or reason != self.reason:  # a retry logs only news
                log.warning(
                    "model %r (%s) unavailable after %.2f s: %s",
                    self.name,
                    self.spec.runtime,
                    time.perf_counter() - start,
                    reason,
                )
            self.state, self.reason = ModelState.UNAVAILABLE, reason
            self._schedule_retry()
            return
        self.load_seconds = time.perf_counter() - start
        self.state, self.reason = ModelState.READY, ""
        log.info(
            "model %r (%s) ready in %.2f s from %s",
            self.name,
            self.spec.runtime,
            self.load_seconds,
            self.spec.source,
        )

    def _schedule_retry(self) -> None:
        """Remote models whose upstream is down retry every `options.retry_seconds` on their own.

        A retry keeps the model UNAVAILABLE until it succeeds, so readiness never flaps.
        """
        seconds = getattr(self.spec.options, "retry_seconds", 0)
        if seconds:
            self._retry = asyncio.get_running_loop().call_later(seconds, self._spawn_retry)

    def _spawn_retry(self) -> None:
        self._retry = None
        self._retrying = asyncio.create_task(self._retry_load())

    async def _retry_load(self) -> None:
        async with self._lock:
            if self.state is ModelState.UNAVAILABLE:
                await asyncio.to_thread(self._unload_runtime)
                await self._start(retrying=True)

    def _upstream_lost(self, exc: UpstreamError) -> None:
        """A remote model whose upstream stopped answering is UNAVAILABLE until it returns."""
        if exc.code == "upstream_unreachable" and self.state is ModelState.READY:
            self.state, self.reason = ModelState.UNAVAILABLE, str(exc)
            log.warning("model %r unavailable: %s", self.name, exc)
            self._schedule_retry()

    def _cancel_retry(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None

    async def unload(self) -> None:
        self._cancel_retry()
        async with self._lock:
            await asyncio.to_thread(self._unload_runtime)
            self.state, self.reason = ModelState.UNLOADED, ""
            log.info("model %r unloaded", self.name)

    def _load_runtime(self) -> Runtime:
        path = resolve(self.spec.source)
        runtime = _runtime_class(self.spec.runtime)(path, self.spec.options)
        runtime.load()
        return runtime

    def _unload_runtime(self) -> None:
        if self.runtime is not None:
            self.runtime.unload()
            self.runtime = None


class Registry:
    """All configured models, by name."""

    def __init__(self, specs: tuple[ModelSpec, ...]) -> None:
        self.models = {spec.name: ModelHandle(spec) for spec in specs}

    def get(self, name: str) -> ModelHandle:
        try:
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
        """Load every model, one after another: on a laptop, parallel loads only contend."""
        for handle in self.models.values():
            await handle.load()

    async def unload_all(self) -> None:
        for handle in self.models.values():
            await handle.unload()
