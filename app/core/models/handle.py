"""ModelHandle: one configured model, composed of its turns, streams, lifecycle and supervisor."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import aclosing
from dataclasses import replace
from typing import Any, TypeVar, cast

from localoip.app.core.config import ModelSpec
from localoip.app.core.disconnect import unless_client_gone
from localoip.app.core.errors import ClientGone
from localoip.app.core.metrics import Metrics
from localoip.app.core.models.batching import EmbedBatcher
from localoip.app.core.models.controls import Controls
from localoip.app.core.models.entry import Entry
from localoip.app.core.models.lifecycle import Lifecycle
from localoip.app.core.models.streams import Streams, collect
from localoip.app.core.models.supervisor import Supervisor
from localoip.app.core.models.turns import Turns
from localoip.app.core.runners.base import RunnerKind, RunnerRuntime
from localoip.runtimes.capabilities import (
    BatchedGeneration,
    Capability,
    ChatRequest,
    ChatTokenizerModel,
    CompletionRequest,
    Embeddings,
    Runtime,
    Sampling,
    TextDelta,
    TextResult,
    UpstreamError,
)
from localoip.runtimes.folding import gather
from localoip.runtimes.options import RemoteOptions

log = logging.getLogger("localoip")
T = TypeVar("T")


class ModelHandle(Entry, Controls):
    """One configured model, as the protocol adapters use it.

    - `turns` (turns.py): admission past its queue limit (429), the FIFO lock (the one queue
      a request waits in) and the worker thread for blocking calls;
    - `streams` (streams.py): deltas from the runner, its engine or a remote model, measured;
    - `embedder` (batching.py): concurrent embedding requests encoded together;
    - `life` (lifecycle.py): state, load, unload, keep_alive (idle.py), retries, restarts;
    - `supervisor` (supervisor.py): the runner ("process" or "in-process"), its crashes;
    - what they say of the model now, from ModelStatus (status.py); the way in of each
      request and a remote model's calls on the event loop, from Entry (entry.py); load,
      unload and keep_alive by hand, from Controls (controls.py).

    A request's path (docs/architecture.md): require(), admission, the load if it waits for
    one, then one queue (the lock, a remote's places, or a batching slot).
    """

    def __init__(
        self,
        spec: ModelSpec,
        metrics: Metrics | None = None,
        runners: RunnerKind = "process",
        restart_delay: float = 1.0,
    ) -> None:
        self.spec = spec
        self.metrics = metrics or Metrics()
        options = spec.options
        width = options.max_concurrency if isinstance(options, RemoteOptions) else 1
        self.turns = Turns(
            spec.name,
            options.queue_limit,
            lambda: getattr(self.life.runtime, "slots", width),
            on_busy=lambda: self.life.idle.cancel(),
            on_idle=lambda: self.life.idle.schedule(),
            width=width,
        )
        self.supervisor = Supervisor(spec, self.metrics, runners, restart_delay)
        self.life = Lifecycle(spec, self.turns, self.supervisor)
        self.streams = Streams(spec.name, self.turns, self.metrics, self.life.upstream_lost)
        self.embedder = EmbedBatcher(options, self.turns, self._runner_turn)
        self.served_once = False

    async def _runner_turn(self) -> RunnerRuntime:
        """A local model's runtime (always its runner's), loaded, in the model's turn (held):
        for an embedding batch."""
        runtime = await self._awake(Capability.EMBED)
        await self._turn(runtime)
        return cast(RunnerRuntime, runtime)

    async def idle(self) -> None:
        """Wait until the model is free (a stopped stream ends within a token)."""
        await self.turns.idle()

    # -- calls --------------------------------------------------------------------------------

    async def call(self, capability: Capability, fn: Callable[[Any], T]) -> T:
        """Call fn(runtime) on the worker, in turn."""
        self.require(capability)
        async with self.turns.admitted():
            return await self._call(await self._awake(capability), fn)

    async def _call(self, runtime: Runtime, fn: Callable[[Any], T]) -> T:
        """fn(runtime) on the worker, in turn; a client that goes away stops the work in a
        runner (an image at its next step)."""
        await self._turn(runtime)
        work, turn = self.turns.run(lambda: fn(runtime))
        try:
            return await unless_client_gone(work)
        except UpstreamError as exc:
            self.life.upstream_lost(exc)
            raise
        except (ClientGone, asyncio.CancelledError):
            turn.stopped()
            if isinstance(runtime, RunnerRuntime):
                log.info("model %r: call stopped; the client went away", self.name)
                runtime.interrupt()
            raise

    def generate_stream(
        self, capability: Capability, request: ChatRequest | CompletionRequest
    ) -> AsyncIterator[TextDelta]:
        """Stream a chat or completion: in the runtime's batching engine when it takes the
        request, otherwise in turn. The model is checked here, so a request it cannot serve
        raises before any delta is asked for (see require)."""
        self.require(capability)
        return self._stream(capability, request)

    async def _stream(
        self, capability: Capability, request: ChatRequest | CompletionRequest
    ) -> AsyncIterator[TextDelta]:
        async with self.turns.admitted():
            runtime = await self._awake(capability)
            start = time.perf_counter()
            deltas = await self._deltas(runtime, request)
            async with aclosing(self.streams.measured(deltas, start)) as measured:
                async for delta in measured:
                    yield delta

    async def generate(
        self, capability: Capability, request: ChatRequest | CompletionRequest
    ) -> TextResult:
        """A whole chat or completion. From a runner it is the stream gathered, so a client
        that goes away stops the generation within a token; a remote model is asked once."""
        self.require(capability)
        async with self.turns.admitted():
            runtime = await self._awake(capability)
            if isinstance(runtime, RunnerRuntime):
                async with aclosing(await self._deltas(runtime, request)) as deltas:
                    result = gather(await collect(deltas))
            elif isinstance(request, ChatRequest):
                result = await self._call(runtime, lambda rt: rt.chat(request))
            else:
                result = await self._call(runtime, lambda rt: rt.complete(request))
        self.streams.counted(result)
        return result

    async def _deltas(
        self, runtime: Runtime, request: ChatRequest | CompletionRequest
    ) -> AsyncIterator[TextDelta]:
        """Deltas from the batching engine when it takes the request, else in turn: from the
        runner directly, or from a remote model on the worker."""
        if isinstance(runtime, BatchedGeneration):
            deltas = await self.streams.batched(runtime, request)
            if deltas is not None:
                return deltas
        await self._turn(runtime)
        if isinstance(runtime, RunnerRuntime):
            return self.streams.from_runner(runtime, request)
        if isinstance(request, ChatRequest):
            return self.streams.walk(runtime, lambda rt: rt.chat_stream(request))
        return self.streams.walk(runtime, lambda rt: rt.complete_stream(request))

    def items(self, capability: Capability, fn: Callable[[Any], Iterator[T]]) -> AsyncIterator[T]:
        """Items of fn(runtime) as they come, in turn (a remote model's relayed stream);
        checked here, so a request it cannot serve raises before any item is asked for."""
        self.require(capability)
        return self._items(capability, fn)

    async def _items(
        self, capability: Capability, fn: Callable[[Any], Iterator[T]]
    ) -> AsyncIterator[T]:
        async with self.turns.admitted():
            runtime = await self._awake(capability)
            await self._turn(runtime)
            async with aclosing(self.streams.walk(runtime, fn)) as items:
                async for item in items:
                    yield item

    async def embed(self, texts: list[str]) -> Embeddings:
        """Embed texts; concurrent requests are encoded together (see EmbedBatcher)."""
        self.require(Capability.EMBED)
        async with self.turns.admitted():
            if isinstance(self.spec.options, RemoteOptions):
                runtime = await self._awake(Capability.EMBED)
                result = await self._call(runtime, lambda rt: rt.embed(texts))
            else:
                result = await self.embedder.embed(texts)
        self.metrics.tokens(self.name, result.prompt_tokens, 0)
        return result


async def prompt_tokens(handle: ModelHandle, chat: ChatRequest) -> int:
    """The tokens of a chat's prompt, as its reply's usage counts them: from the model's own
    tokenizer when it has one, else by generating one token (a remote model)."""
    if isinstance(handle.runtime, ChatTokenizerModel):
        return await handle.call(Capability.CHAT, lambda rt: len(rt.tokenize_chat(chat)))
    one = Sampling(max_tokens=1, temperature=0.0)
    result = await handle.generate(Capability.CHAT, replace(chat, sampling=one))
    return result.prompt_tokens
