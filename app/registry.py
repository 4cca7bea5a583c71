"""Model lifecycle and scheduling: states, loading, per-model queues and workers, keep_alive."""

from __future__ import annotations

import asyncio
import enum
import gc
import logging
import math
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import aclosing, asynccontextmanager
from typing import Any, TypeVar

from localoip.app.batching import EmbedBatcher
from localoip.app.bridge import Channel
from localoip.app.config import ModelSpec
from localoip.app.disconnect import unless_client_gone
from localoip.app.errors import (
    CapabilityMissing,
    ClientGone,
    ModelCrashed,
    ModelNotFound,
    ModelNotReady,
    QueueFull,
)
from localoip.app.memory import trim_heap
from localoip.app.metrics import Metrics, note_model
from localoip.app.runners.client import LoadCrashed, LoadFailed, RunnerProcess, RunnerRuntime
from localoip.app.runners.crash import CrashHistory, RunnerStatus, advice
from localoip.runtimes.base import (
    BatchedGeneration,
    Capability,
    ChatRequest,
    CompletionRequest,
    Embeddings,
    Runtime,
    TextDelta,
    TextResult,
    UpstreamError,
    gather,
)
from localoip.runtimes.catalogue import RUNTIMES, load_runtime
from localoip.runtimes.options import RemoteOptions

log = logging.getLogger("localoip")
T = TypeVar("T")
CRASHED = "runner crashed"


class ModelState(enum.StrEnum):
    LOADING = "LOADING"
    READY = "READY"
    UNAVAILABLE = "UNAVAILABLE"
    UNLOADED = "UNLOADED"


class ModelHandle:
    """One configured model: its state, its runtime when loaded, its queue and its worker.

    A dedicated worker thread owns the runtime: it loads it and runs every call, one at a
    time, in the FIFO order of this model's lock. llama.cpp crashes when two threads share
    a model, and its OpenMP team is tied to the calling thread, so one thread is also the
    fast way. At most `options.max_queue` requests wait or run; more are refused with 429.
    Continuous-batching runtimes run eligible generations beside the worker, in their engine.
    """

    def __init__(self, spec: ModelSpec, metrics: Metrics | None = None) -> None:
        self.spec = spec
        self.metrics = metrics or Metrics()
        self.state = ModelState.UNLOADED
        self.reason = ""
        self.load_seconds: float | None = None
        self.runtime: Runtime | None = None
        self.pending = 0  # requests admitted and not yet answered: queued or running
        self.running = 0  # of which the model is working on
        self._service = 1.0  # a moving average of seconds per request, for Retry-After
        self._lock = asyncio.Lock()
        self._worker = ThreadPoolExecutor(1, thread_name_prefix=f"model-{spec.name}")
        self._retry: asyncio.TimerHandle | None = None
        self._background: asyncio.Task | None = None  # a running retry or idle unload, held
        self._idle_timer: asyncio.TimerHandle | None = None
        self._waking: asyncio.Task | None = None
        self.wakes = False  # unloaded for idleness: the next request loads it again
        self.served_once = False
        self.embedder = EmbedBatcher(self)
        self.crashes = CrashHistory()
        self._starting: RunnerProcess | None = None  # a runner that is loading the model

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def capabilities(self) -> frozenset[Capability]:
        """The runtime's own, and rerank for a model that embeds (by cosine, see app/rerank.py)."""
        own = self.spec.options.capabilities()
        return own | {Capability.RERANK} if Capability.EMBED in own else own

    @property
    def runner_pid(self) -> int | None:
        """The pid of the runner process serving this model, while there is one."""
        runtime = self.runtime
        if isinstance(runtime, RunnerRuntime):
            return runtime.pid
        return self._starting.pid if self._starting is not None else None

    @property
    def runner(self) -> RunnerStatus | None:
        """The runner's pid, restarts and last crash; None for a remote model."""
        if not RUNTIMES[self.spec.runtime].local:
            return None
        return RunnerStatus(self.runner_pid, self.crashes.restarts, self.crashes.last)

    @property
    def queued(self) -> int:
        return self.pending - self.running

    @property
    def servable(self) -> bool:
        """Ready now, or idle and loading again on the next request."""
        return self.state is ModelState.READY or self.wakes

    def require(self, capability: Capability) -> None:
        """Refuse, before any work, a request this model cannot serve."""
        if capability not in self.capabilities:
            can = ", ".join(sorted(self.capabilities))
            raise CapabilityMissing(
                f"model {self.name!r} cannot do {capability}; it can do: {can}", "model"
            )
        if self._crashed_out():
            raise self._crash_error()
        if not self.servable:
            why = f": {self.reason}" if self.reason else ""
            raise ModelNotReady(f"model {self.name!r} is not ready ({self.state}{why})", "model")

    def _crashed_out(self) -> bool:
        """Unavailable because the runner crashed (and not yet loaded again)."""
        return self.state is ModelState.UNAVAILABLE and self.reason.startswith(CRASHED)

    def _crash_error(self) -> ModelCrashed:
        return ModelCrashed(f"model {self.name!r} is unavailable: {self.reason}", "model")

    async def _runtime(self, capability: Capability) -> Runtime:
        """The loaded runtime, loading it first if it was unloaded for idleness."""
        self.require(capability)
        if self.wakes:
            if self._waking is None:
                self._waking = asyncio.create_task(self.load())
                self._waking.add_done_callback(lambda _: setattr(self, "_waking", None))
            await asyncio.shield(self._waking)
            self.require(capability)
        if self.runtime is None:  # unloaded while this request waited
            raise ModelNotReady(f"model {self.name!r} is not ready ({self.state})", "model")
        if not self.served_once:  # logged before the call: a native crash leaves this line last
            self.served_once = True
            log.info("model %r: first %s request", self.name, capability)
        return self.runtime

    # -- admission ----------------------------------------------------------------------------

    @asynccontextmanager
    async def _admitted(self) -> AsyncIterator[None]:
        """Count a request against the queue limit for as long as it waits or runs."""
        limit = self.spec.options.queue_limit
        if self.pending >= limit:
            wait = self._service * (self.queued + 1) / self._slots()
            raise QueueFull(
                f"model {self.name!r} has {self.pending} requests queued or running, its "
                f"limit (max_queue = {limit}); retry later",
                retry_after=max(1, math.ceil(wait)),
            )
        self._cancel_idle()
        self.pending += 1
        try:
            yield
        finally:
            self.pending -= 1
            if self.pending == 0:
                self._schedule_idle()

    @property
    def parallel(self) -> dict[str, Any] | None:
        """A loaded generation model's parallel slots and how they were sized (its model
        card's `parallel`); None for other models and before the load."""
        reason = getattr(self.runtime, "slots_reason", "")
        return {"slots": self._slots(), "sized": reason} if reason else None

    @property
    def slots(self) -> str:
        """The same in words, "4 parallel slots (auto: 4 on a CPU)"; "" when None."""
        parallel = self.parallel
        if parallel is None:
            return ""
        count = parallel["slots"]
        return f"{count} parallel slot{'s' if count != 1 else ''} ({parallel['sized']})"

    def _slots(self) -> int:
        """Requests the model serves at once (its batching engine's slots)."""
        return getattr(self.runtime, "slots", 1)

    def _served(self, seconds: float) -> None:
        self._service = 0.8 * self._service + 0.2 * seconds

    async def _acquire(self) -> None:
        """Take the model's lock in FIFO order; give up the place if the client hangs up."""
        if not self._lock.locked():
            await self._lock.acquire()
            return
        await unless_client_gone(self._lock.acquire(), self._lock.release)

    async def take_model(self, capability: Capability) -> Runtime:
        """Wait for this model's turn (FIFO) and hold it; run_on_worker or release_model next."""
        runtime = await self._runtime(capability)
        await self._acquire()
        if self.runtime is not runtime:
            self._lock.release()
            if self._crashed_out():
                raise self._crash_error()
            raise ModelNotReady(f"model {self.name!r} was unloaded", "model")
        return runtime

    def release_model(self) -> None:
        self._lock.release()

    def run_on_worker(self, runtime: Runtime, fn: Callable[[Any], T]) -> asyncio.Future[T]:
        """Start fn(runtime) on the worker, which frees the model taken by take_model.

        The worker, not the caller, releases the model when fn ends. A thread cannot be
        cancelled, and a caller can be (a client that hung up): this way no second call
        ever shares the model with a thread that is still running, which crashes llama.cpp.
        """
        loop = asyncio.get_running_loop()
        self.running += 1

        def run() -> T:
            start = time.perf_counter()
            try:
                return fn(runtime)
            finally:
                seconds = time.perf_counter() - start
                loop.call_soon_threadsafe(self._finished, seconds)

        return loop.run_in_executor(self._worker, run)

    def _finished(self, seconds: float) -> None:
        self.running -= 1
        self._served(seconds)
        self._lock.release()

    async def idle(self) -> None:
        """Wait until the worker is free (a stopped stream ends within a token)."""
        async with self._lock:
            pass

    # -- calls --------------------------------------------------------------------------------

    async def call(self, capability: Capability, fn: Callable[[Any], T]) -> T:
        """Call fn(runtime) on the worker, in turn."""
        self.require(capability)
        async with self._admitted():
            return await self._call(capability, fn)

    async def _call(self, capability: Capability, fn: Callable[[Any], T]) -> T:
        runtime = await self.take_model(capability)
        work = self.run_on_worker(runtime, fn)
        try:
            return await unless_client_gone(work)
        except UpstreamError as exc:
            self._upstream_lost(exc)
            raise
        except (ClientGone, asyncio.CancelledError):
            if isinstance(runtime, RunnerRuntime):  # stop the work in the runner, too
                log.info("model %r: call stopped; the client went away", self.name)
                runtime.interrupt()
            raise

    async def _walk(
        self, capability: Capability, make_iter: Callable[[Any], Iterator[T]]
    ) -> AsyncIterator[T]:
        """Items of make_iter(runtime), produced on the worker.

        When the consumer stops early (a client disconnect), the worker stops at the
        next item and then frees the model; nothing here awaits, so a cancelled
        consumer cannot cut that short.
        """
        channel: Channel[T] = Channel()
        stop = threading.Event()

        def work(runtime: Any) -> None:
            try:
                iterator = make_iter(runtime)
                try:
                    for item in iterator:
                        if stop.is_set():
                            break
                        channel.put(item)
                finally:
                    close = getattr(iterator, "close", None)
                    if close is not None:
                        close()
            except BaseException as exc:  # handed to the consumer, raised there
                channel.put(exc)
            else:
                channel.put(None)

        self.run_on_worker(await self.take_model(capability), work)
        done = False
        try:
            while not done:
                item = await channel.get()
                done = item is None or isinstance(item, BaseException)
                if isinstance(item, BaseException):
                    if isinstance(item, UpstreamError):
                        self._upstream_lost(item)
                    raise item
                if not done:
                    yield item
        finally:
            if not done:
                log.info("model %r: stream stopped early; the client went away", self.name)
            stop.set()

    async def generate_stream(
        self, capability: Capability, request: ChatRequest | CompletionRequest
    ) -> AsyncIterator[TextDelta]:
        """Stream a chat or completion: in the runtime's batching engine when it takes the
        request, otherwise on the worker, in turn."""
        self.require(capability)
        async with self._admitted():
            runtime = await self._runtime(capability)
            deltas = self._batched(runtime, capability, request)
            if deltas is None:
                if capability is Capability.CHAT:
                    deltas = self._walk(capability, lambda rt: rt.chat_stream(request))
                else:
                    deltas = self._walk(capability, lambda rt: rt.complete_stream(request))
            async with aclosing(self._measured(deltas)) as measured:
                async for delta in measured:
                    yield delta

    async def _measured(self, deltas: AsyncIterator[TextDelta]) -> AsyncIterator[TextDelta]:
        """Deltas, recording the time to the first token and the tokens used."""
        start, first, usage = time.perf_counter(), True, None
        try:
            async with aclosing(deltas):
                async for delta in deltas:
                    if first and delta.text:
                        self.metrics.ttft.labels(self.name).observe(time.perf_counter() - start)
                        first = False
                    usage = delta.usage or usage
                    yield delta
        finally:
            if usage is not None:
                self.metrics.tokens(self.name, *usage)

    async def generate(
        self, capability: Capability, request: ChatRequest | CompletionRequest
    ) -> TextResult:
        """A whole chat or completion: gathered from the batching engine when it takes the
        request, otherwise one call on the worker."""
        self.require(capability)
        async with self._admitted():
            runtime = await self._runtime(capability)
            deltas = self._batched(runtime, capability, request)
            if deltas is not None:
                async with aclosing(deltas):  # a client that leaves cancels the sequence
                    result = gather(await unless_client_gone(_collect(deltas)))
            elif capability is Capability.CHAT:
                result = await self._call(capability, lambda rt: rt.chat(request))
            else:
                result = await self._call(capability, lambda rt: rt.complete(request))
        self.metrics.tokens(self.name, result.prompt_tokens, result.completion_tokens)
        return result

    def _batched(
        self, runtime: Runtime, capability: Capability, request: ChatRequest | CompletionRequest
    ) -> AsyncIterator[TextDelta] | None:
        """Deltas from the runtime's batching engine, or None if it does not take the request."""
        if not isinstance(runtime, BatchedGeneration):
            return None
        channel: Channel[TextDelta] = Channel()
        if isinstance(request, ChatRequest):
            cancel = runtime.chat_batched(request, channel.put)
        else:
            cancel = runtime.complete_batched(request, channel.put)
        return None if cancel is None else self._drain(channel, cancel)

    async def _drain(
        self, channel: Channel[TextDelta], cancel: Callable[[], None]
    ) -> AsyncIterator[TextDelta]:
        """Deltas the engine hands over; a consumer that stops early cancels the sequence."""
        self.running += 1
        start = time.perf_counter()
        ended = False
        try:
            item = await unless_client_gone(channel.get())  # may wait for a free slot
            while True:
                if item is None:
                    ended = True
                    return
                if isinstance(item, BaseException):
                    ended = True
                    raise item
                yield item
                item = await channel.get()
        finally:
            self.running -= 1
            self._served(time.perf_counter() - start)
            if not ended:
                log.info("model %r: stream stopped early; the client went away", self.name)
                cancel()

    async def embed(self, texts: list[str]) -> Embeddings:
        """Embed texts; concurrent requests are encoded together (see EmbedBatcher)."""
        self.require(Capability.EMBED)
        if isinstance(self.spec.options, RemoteOptions):
            result = await self.call(Capability.EMBED, lambda rt: rt.embed(texts))
        else:
            async with self._admitted():
                result = await self.embedder.embed(texts)
        self.metrics.tokens(self.name, result.prompt_tokens, 0)
        return result

    # -- lifecycle ----------------------------------------------------------------------------

    async def _in_worker(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._worker, fn)

    async def load(self) -> None:
        """(Re)load the model; failures leave it UNAVAILABLE with the reason, never raise."""
        async with self._lock:
            self._cancel_retry()
            self._cancel_idle()
            self.crashes.forgive()
            self.state, self.reason = ModelState.LOADING, ""
            await self._in_worker(self._unload_runtime)
            await self._start()
            self.wakes = False
        if self.pending == 0:
            self._schedule_idle()

    async def _start(self, retrying: bool = False) -> None:
        """Load the runtime: READY, or UNAVAILABLE with the reason. Holds the lock."""
        if not retrying:  # logged before the call: a native crash leaves this line last
            log.info(
                "loading model %r (%s) from %s", self.name, self.spec.runtime, self.spec.source
            )
        start = time.perf_counter()
        try:
            self.runtime = await self._open_runtime()
        except LoadCrashed as exc:
            self._crashed(None, exc.returncode, exc.reason)
            return
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
        batching = self._slots() > 1
        log.info(
            "model %r (%s) ready in %.2f s from %s%s",
            self.name,
            self.spec.runtime,
            self.load_seconds,
            self.spec.source,
            f"; continuous batching over {self._slots()} slots "
            f"({getattr(self.runtime, 'slots_reason', '')})"
            if batching
            else "",
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
        self._background = asyncio.create_task(self._retry_load())

    async def _retry_load(self) -> None:
        async with self._lock:
            if self.state is ModelState.UNAVAILABLE:
                await self._in_worker(self._unload_runtime)
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

    def _schedule_idle(self) -> None:
        """With `options.keep_alive`, unload the model once it has been idle that long."""
        seconds = self.spec.options.keep_alive_seconds
        if seconds is not None and self.state is ModelState.READY:
            self._cancel_idle()
            self._idle_timer = asyncio.get_running_loop().call_later(seconds, self._spawn_sleep)

    def _cancel_idle(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None

    def _spawn_sleep(self) -> None:
        self._idle_timer = None
        self._background = asyncio.create_task(self._sleep())

    async def _sleep(self) -> None:
        """Unload for idleness; the next request loads the model again."""
        async with self._lock:
            if self.pending or self.state is not ModelState.READY:
                return
            await self._in_worker(self._unload_runtime)
            self.state, self.reason = ModelState.UNLOADED, "idle; loads on the next request"
            self.wakes = True
            log.info("model %r unloaded after %s idle", self.name, self.spec.options.keep_alive)

    async def unload(self) -> None:
        self._cancel_retry()
        self._cancel_idle()
        async with self._lock:
            await self._in_worker(self._unload_runtime)
            self.state, self.reason = ModelState.UNLOADED, ""
            self.wakes = False
            log.info("model %r unloaded", self.name)

    async def _open_runtime(self) -> Runtime | RunnerRuntime:
        """A local model's runner, loaded; a remote model's client, in this process."""
        kind = RUNTIMES[self.spec.runtime]
        if not kind.local:
            spec = self.spec
            return await self._in_worker(
                lambda: load_runtime(spec.runtime, spec.source, spec.options)
            )
        loop = asyncio.get_running_loop()

        def crashed(runner: RunnerProcess, returncode: int, reason: str) -> None:
            loop.call_soon_threadsafe(self._crashed, runner, returncode, reason)

        # Started on the loop's thread: the runner's parent-death signal follows this thread.
        runner = self._starting = RunnerProcess(self.spec, crashed)
        try:
            return await self._in_worker(runner.wait_ready)
        except LoadFailed as exc:
            raise RuntimeError(str(exc)) from None
        except BaseException:
            runner.kill("was unloaded")  # the worker, still waiting for it, reaps it
            raise
        finally:
            self._starting = None

    def _crashed(self, runner: RunnerProcess | None, returncode: int, reason: str) -> None:
        """The runner died: UNAVAILABLE with the reason, and a restart after a backoff, until
        too many crashes in a row."""
        if runner is not None:
            if not isinstance(self.runtime, RunnerRuntime) or self.runtime.runner is not runner:
                return  # an old runner's news
            self.runtime = None
        delay = self.crashes.crashed(returncode, reason)
        self.metrics.runner_crash(self.name, returncode)
        if delay is None:
            then = "it crashed 5 times in 10 minutes, so it stays unavailable until loaded again"
        else:
            then = f"restarting in {delay:g} s"
        self.state, self.reason = ModelState.UNAVAILABLE, f"{CRASHED}: {reason}; {then}"
        log.error("model %r: runner %s; %s", self.name, reason, then)
        hint = advice(returncode)
        if hint:
            log.error("model %r: %s", self.name, hint)
        if delay is not None:
            self._cancel_retry()
            self._retry = asyncio.get_running_loop().call_later(delay, self._spawn_restart)

    def _spawn_restart(self) -> None:
        self._retry = None
        self._background = asyncio.create_task(self._restart())

    async def _restart(self) -> None:
        async with self._lock:
            if self.state is ModelState.UNAVAILABLE and self.runtime is None:
                self.crashes.restarts += 1
                self.metrics.runner_restart(self.name, self.crashes.last_cause or "")
                log.info("model %r: restarting its runner", self.name)
                self.state = ModelState.LOADING
                await self._start(retrying=True)

    def _unload_runtime(self) -> None:
        if self.runtime is not None:
            self.runtime.unload()
            self.runtime = None
            gc.collect()
            trim_heap()


async def _collect(items: AsyncIterator[T]) -> list[T]:
    return [item async for item in items]


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
