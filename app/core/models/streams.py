"""A model's generations as async iterators: from its runner, from its batching engine, from a
remote model on the worker; and measured."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import aclosing
from typing import Any, TypeVar

from localoip.app.core.bridge import Channel
from localoip.app.core.disconnect import unless_client_gone
from localoip.app.core.metrics import Metrics
from localoip.app.core.models.turns import Turn, Turns
from localoip.app.core.runners.base import RunnerRuntime
from localoip.app.core.runners.driver import Declined
from localoip.runtimes.capabilities import (
    BatchedGeneration,
    ChatRequest,
    CompletionRequest,
    Runtime,
    TextDelta,
    TextResult,
    Truncated,
    UpstreamError,
)

log = logging.getLogger("localoip")
T = TypeVar("T")
_NOTHING: Any = object()


class Streams:
    """Streams of one model. `lost` hears of an upstream that stopped answering."""

    def __init__(
        self, name: str, turns: Turns, metrics: Metrics, lost: Callable[[UpstreamError], None]
    ) -> None:
        self.name = name
        self.turns = turns
        self.metrics = metrics
        self.lost = lost

    def from_runner(
        self, runtime: RunnerRuntime, request: ChatRequest | CompletionRequest
    ) -> AsyncIterator[TextDelta]:
        """Deltas of a runner's chat_stream or complete_stream, started now, in the model's
        turn (its lock, held by the caller).

        The thread that reads the runner's answers puts each delta straight into a Channel
        for the event loop. The turn ends when the runner says the call has ended: a consumer
        that stops early (a client disconnect) cancels it, and the next call waits until the
        runner has stopped, within a token."""
        name = "chat_stream" if isinstance(request, ChatRequest) else "complete_stream"
        channel: Channel[TextDelta] = Channel()
        turn = self.turns.begin()
        handover = _Handover(channel, turn)
        try:
            handover.cancel_call = runtime.start(name, (request,), handover)
        except BaseException:
            turn.finish()
            raise
        return _Drained(self, channel, handover.cancel)

    async def batched(
        self, runtime: BatchedGeneration, request: ChatRequest | CompletionRequest
    ) -> AsyncIterator[TextDelta] | None:
        """Deltas from the runtime's batching engine, or None when it does not take the
        request (it then runs in the model's turn). Waits for the first delta, which may wait
        for a free slot, unless the client goes away (ClientGone)."""
        channel: Channel[TextDelta] = Channel()
        if isinstance(request, ChatRequest):
            cancel = runtime.chat_batched(request, channel.put)
        else:
            cancel = runtime.complete_batched(request, channel.put)
        if cancel is None:
            return None
        self.turns.running += 1
        start = time.perf_counter()

        def ended() -> None:
            self.turns.running -= 1
            self.turns.served(time.perf_counter() - start)

        drained = _Drained(self, channel, cancel, ended)
        try:
            first = await unless_client_gone(channel.get())
        except BaseException:
            await drained.aclose()
            raise
        if isinstance(first, Declined):
            self.turns.running -= 1
            return None
        drained.first = first
        return drained

    def walk(self, runtime: Runtime, items: Callable[[Runtime], Iterator[T]]) -> AsyncIterator[T]:
        """Items of items(runtime), produced on the model's worker, started now in the model's
        turn (its lock, held by the caller): a remote model's stream.

        When the consumer stops early (a client disconnect), the worker stops at the next
        item and then frees the model; nothing here awaits, so a cancelled consumer cannot
        cut that short."""
        channel: Channel[T] = Channel()
        stop = threading.Event()

        def work() -> None:
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

        _, turn = self.turns.run(work)

        def stopped() -> None:
            stop.set()
            turn.stopped()

        return _Drained(self, channel, stopped)

    def counted(self, result: TextResult) -> None:
        """A whole result's tokens counted, and its prompt's truncation logged."""
        self.metrics.tokens(self.name, result.prompt_tokens, result.completion_tokens)
        self.metrics.speculated(self.name, result.speculation, result.completion_tokens)
        if result.truncated is not None:
            log_truncated(self.name, result.truncated, result.prompt_tokens)

    async def measured(
        self, deltas: AsyncIterator[TextDelta], start: float
    ) -> AsyncIterator[TextDelta]:
        """Deltas, recording the time from `start` (perf_counter) to the first token (of the
        reasoning or of the answer, whichever comes first), and the tokens used."""
        first, usage = True, None
        try:
            async with aclosing(deltas):
                async for delta in deltas:
                    if first and (delta.text or delta.reasoning):
                        self.metrics.ttft.labels(self.name).observe(time.perf_counter() - start)
                        first = False
                    usage = delta.usage or usage
                    if delta.usage is not None:
                        self.metrics.speculated(self.name, delta.speculation, delta.usage[1])
                        if delta.truncated is not None:
                            log_truncated(self.name, delta.truncated, delta.usage[0])
                    yield delta
        finally:
            if usage is not None:
                self.metrics.tokens(self.name, *usage)


def log_truncated(model: str, truncated: Truncated, read: int) -> None:
    """The log line of a prompt cut to fit its model's context (INFO)."""
    log.info(
        "model %r: prompt truncated by %s: %d tokens dropped, %d read",
        model,
        truncated.policy,
        truncated.dropped,
        read,
    )


class _Drained:
    """A channel's items until its end (None) or its error. Closed before the end, even
    before the first item, it calls `stop()`: the work behind it has already started."""

    def __init__(
        self,
        streams: Streams,
        channel: Channel[T],
        stop: Callable[[], None],
        ended: Callable[[], None] | None = None,
    ) -> None:
        self.streams = streams
        self.channel = channel
        self.stop = stop
        self.ended = ended
        self.first: Any = _NOTHING  # an item already taken from the channel
        self.over = False

    def __aiter__(self) -> _Drained:
        return self

    async def __anext__(self) -> Any:
        if self.over:
            raise StopAsyncIteration
        item, self.first = self.first, _NOTHING
        if item is _NOTHING:
            item = await self.channel.get()
        if item is None:
            self._end()
            raise StopAsyncIteration
        if isinstance(item, BaseException):
            self._end()
            if isinstance(item, UpstreamError):
                self.streams.lost(item)
            raise item
        return item

    async def aclose(self) -> None:
        if not self.over:
            log.info("model %r: stream stopped early; the client went away", self.streams.name)
            self._end()
            self.stop()

    def _end(self) -> None:
        self.over = True
        if self.ended is not None:
            self.ended()


class _Handover:
    """A runner call's Reply, from the thread that reads the runner, for the event loop:
    deltas into a Channel, then None or the error; the model's turn finished at the end."""

    def __init__(self, channel: Channel[TextDelta], turn: Turn) -> None:
        self.channel = channel
        self.turn = turn
        self.cancel_call: Callable[[], None] | None = None
        self._quiet = False  # the consumer has gone

    def item(self, value: TextDelta) -> None:
        if not self._quiet:
            self.channel.put(value)

    def done(self, _value: object) -> None:
        self.channel.put(None)
        self.turn.finish()

    def failed(self, error: BaseException) -> None:
        self.channel.put(error)
        self.turn.finish()

    def cancel(self) -> None:
        """The consumer stopped early: cancel the call, and drop what it still sends."""
        self._quiet = True
        self.turn.stopped()
        if self.cancel_call is not None:
            self.cancel_call()


async def collect(items: AsyncIterator[T]) -> list[T]:
    """Every item, waiting for them unless the client goes away (ClientGone)."""
    return await unless_client_gone(_all(items))


async def _all(items: AsyncIterator[T]) -> list[T]:
    return [item async for item in items]
