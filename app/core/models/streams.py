"""A runtime's work as async iterators: deltas from the worker, from a batching engine, measured."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import aclosing
from typing import TypeVar

from localoip.app.core.bridge import Channel
from localoip.app.core.disconnect import unless_client_gone
from localoip.app.core.metrics import Metrics
from localoip.app.core.models.turns import Turns
from localoip.runtimes.capabilities import (
    BatchedGeneration,
    ChatRequest,
    CompletionRequest,
    Runtime,
    TextDelta,
    UpstreamError,
)

log = logging.getLogger("localoip")
T = TypeVar("T")


class Streams:
    """Streams of one model. `lost` hears of an upstream that stopped answering."""

    def __init__(
        self, name: str, turns: Turns, metrics: Metrics, lost: Callable[[UpstreamError], None]
    ) -> None:
        self.name = name
        self.turns = turns
        self.metrics = metrics
        self.lost = lost

    async def walk(
        self, take: Callable[[], Awaitable[Runtime]], items: Callable[[Runtime], Iterator[T]]
    ) -> AsyncIterator[T]:
        """Items of items(runtime), produced on the worker once take() gives the model's turn.

        When the consumer stops early (a client disconnect), the worker stops at the next
        item and then frees the model; nothing here awaits, so a cancelled consumer cannot
        cut that short. A runner's stream gets its cancel when the iterator is closed."""
        channel: Channel[T] = Channel()
        stop = threading.Event()

        def work(runtime: Runtime) -> None:
            try:
                iterator = items(runtime)
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

        runtime = await take()
        self.turns.run(lambda: work(runtime))
        done = False
        try:
            while not done:
                item = await channel.get()
                done = item is None or isinstance(item, BaseException)
                if isinstance(item, BaseException):
                    if isinstance(item, UpstreamError):
                        self.lost(item)
                    raise item
                if not done:
                    yield item
        finally:
            if not done:
                log.info("model %r: stream stopped early; the client went away", self.name)
            stop.set()

    def batched(
        self, runtime: Runtime, request: ChatRequest | CompletionRequest
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
        self.turns.running += 1
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
            self.turns.running -= 1
            self.turns.served(time.perf_counter() - start)
            if not ended:
                log.info("model %r: stream stopped early; the client went away", self.name)
                cancel()

    async def measured(self, deltas: AsyncIterator[TextDelta]) -> AsyncIterator[TextDelta]:
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


async def collect(items: AsyncIterator[T]) -> list[T]:
    """Every item, waiting for them unless the client goes away (ClientGone)."""
    return await unless_client_gone(_all(items))


async def _all(items: AsyncIterator[T]) -> list[T]:
    return [item async for item in items]
