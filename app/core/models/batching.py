"""Embedding micro-batching: concurrent requests to one model encoded as one batch."""

from __future__ import annotations

import asyncio
import contextvars
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from localoip.app.core.bridge import Answer
from localoip.app.core.disconnect import unless_client_gone
from localoip.app.core.models.turns import Turns
from localoip.app.core.runners.base import RunnerRuntime
from localoip.runtimes.capabilities import Embeddings


@dataclass(slots=True)
class _Waiting:
    texts: list[str]
    answer: asyncio.Future[Embeddings]


class EmbedBatcher:
    """Concurrent embedding requests to one model, encoded as one batch and split back.

    This is MLServer's adaptive batching, tuned for a laptop: a batch takes every request
    that queued while the model was busy, up to `options.max_batch_size` texts. Under
    concurrent load (the last batch held several requests) it also waits up to
    `options.max_batch_ms` for more; a lone request never waits. `take()` waits for the
    model's turn and holds it: its runner's runtime, loaded (remote models do not batch).
    """

    def __init__(
        self, options: Any, turns: Turns, take: Callable[[], Awaitable[RunnerRuntime]]
    ) -> None:
        self.options = options
        self.turns = turns
        self.take = take
        self._waiting: deque[_Waiting] = deque()
        self._runner: asyncio.Task[None] | None = None
        self._busy = False  # the last batch held more than one request

    async def embed(self, texts: list[str]) -> Embeddings:
        answer = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(texts, answer))
        if self._runner is None:
            # A fresh context: the runner serves every waiting request, so it must not
            # inherit this one's disconnect watch (its client leaving would fail them all).
            self._runner = asyncio.create_task(self._run(), context=contextvars.Context())
        return await unless_client_gone(answer)

    def _take(self, batch: list[_Waiting]) -> None:
        """Move waiting requests into the batch while they fit; a lone large one still goes."""
        limit = self.options.max_batch_size
        size = sum(len(w.texts) for w in batch)
        while self._waiting:
            head = self._waiting[0]
            if head.answer.done():  # its client went away
                self._waiting.popleft()
                continue
            if batch and size + len(head.texts) > limit:
                break
            batch.append(self._waiting.popleft())
            size += len(head.texts)

    async def _run(self) -> None:
        try:
            while self._waiting:
                await self._one_batch()
        finally:
            self._runner = None

    async def _one_batch(self) -> None:
        options = self.options
        batch: list[_Waiting] = []
        try:
            runtime = await self.take()
        except Exception as exc:
            self._fail(list(self._waiting), exc)
            self._waiting.clear()
            return
        self._take(batch)
        if (
            self._busy
            and options.max_batch_ms
            and sum(len(w.texts) for w in batch) < (options.max_batch_size)
        ):
            await asyncio.sleep(options.max_batch_ms / 1000)
            self._take(batch)
        self._busy = len(batch) > 1
        if not batch:
            self.turns.release()
            return
        texts = [text for w in batch for text in w.texts]
        try:
            result = await self._embed(runtime, texts)
        except Exception as exc:
            self._fail(batch, exc)
            return
        for waiting, part in zip(batch, result.split([len(w.texts) for w in batch]), strict=True):
            if not waiting.answer.done():
                waiting.answer.set_result(part)

    def _embed(self, runtime: RunnerRuntime, texts: list[str]) -> asyncio.Future[Embeddings]:
        """The runner's embedding of texts, in the model's turn (held), which ends with it.
        The answer comes from the thread that reads the runner, with no thread between."""
        answer: Answer[Embeddings] = Answer(self.turns.begin().finish)
        try:
            runtime.start("embed", (texts,), answer)
        except BaseException as exc:  # the runner is gone
            answer.failed(exc)
        return answer.future

    @staticmethod
    def _fail(batch: list[_Waiting], exc: Exception) -> None:
        for waiting in batch:
            if not waiting.answer.done():
                waiting.answer.set_exception(exc)
