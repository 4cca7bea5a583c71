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
from localoip.app.core.models.turns import Turn, Turns
from localoip.app.core.runners.base import RunnerRuntime
from localoip.runtimes.capabilities import Embeddings

AHEAD = 2
"""Batches a runner holds at once: one encoding, the next queued behind it in the runner, so
it starts the moment the first ends instead of after a round trip through the server."""


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

    One turn covers a run of batches: while requests wait, up to AHEAD batches are in the
    runner at once (its driver runs them one after another), so the runner never idles
    between batches. The run ends when no request waits, a batch fails, or other work waits
    for the model's turn (which it then gets, in FIFO order, before the next run).
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
                await self._one_run()
        finally:
            self._runner = None

    async def _one_run(self) -> None:
        """Take the model's turn and send batches, AHEAD at most in the runner, until the run
        ends (see the class); the turn ends when the last batch sent has been answered."""
        try:
            runtime = await self.take()
        except Exception as exc:
            self._fail(list(self._waiting), exc)
            self._waiting.clear()
            return
        if not any(not w.answer.done() for w in self._waiting):  # their clients went away
            self._waiting.clear()
            self.turns.release()
            return
        run = _Run(self.turns.begin())
        sent: set[asyncio.Future[None]] = set()
        try:
            while True:
                # after its first batch, a run gives way to other work waiting for the turn
                while len(sent) < AHEAD and self._waiting and not run.failed:
                    if run.batches and self.turns.waiting:
                        break
                    batch = await self._batch()
                    if batch:
                        run.batches += 1
                        sent.add(asyncio.ensure_future(self._send(runtime, batch, run)))
                if not sent:
                    break
                _, sent = await asyncio.wait(sent, return_when=asyncio.FIRST_COMPLETED)
        finally:
            run.close()

    async def _batch(self) -> list[_Waiting]:
        """The next batch: what waits, and under load what comes within max_batch_ms."""
        options = self.options
        batch: list[_Waiting] = []
        self._take(batch)
        if (
            self._busy
            and options.max_batch_ms
            and sum(len(w.texts) for w in batch) < options.max_batch_size
        ):
            await asyncio.sleep(options.max_batch_ms / 1000)
            self._take(batch)
        if batch:
            self._busy = len(batch) > 1
        return batch

    async def _send(self, runtime: RunnerRuntime, batch: list[_Waiting], run: _Run) -> None:
        """Encode one batch in the runner and hand each request its part; a failure fails
        the batch's requests and ends the run."""
        texts = [text for w in batch for text in w.texts]
        answer: Answer[Embeddings] = Answer(run.answered)
        run.calls += 1
        try:
            runtime.start("embed", (texts,), answer)
        except BaseException as exc:  # the runner is gone
            answer.failed(exc)
        try:
            result = await answer.future
        except Exception as exc:
            run.failed = True
            self._fail(batch, exc)
            return
        for waiting, part in zip(batch, result.split([len(w.texts) for w in batch]), strict=True):
            if not waiting.answer.done():
                waiting.answer.set_result(part)

    @staticmethod
    def _fail(batch: list[_Waiting], exc: Exception) -> None:
        for waiting in batch:
            if not waiting.answer.done():
                waiting.answer.set_exception(exc)


class _Run:
    """The turn of one run of batches: it ends once the run is closed and every call sent
    has been answered (by the runner, whatever became of the task that sent it)."""

    def __init__(self, turn: Turn) -> None:
        self.turn = turn
        self.batches = 0  # sent so far
        self.calls = 0  # sent and not yet answered
        self.failed = False
        self._closed = False
        self._over = False

    def answered(self) -> None:
        self.calls -= 1
        self._end()

    def close(self) -> None:
        self._closed = True
        self._end()

    def _end(self) -> None:
        if self._closed and self.calls == 0 and not self._over:
            self._over = True
            self.turn.finish()
