"""Responses generated in a task (background or streamed): events, followers, cancel, storage."""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing, asynccontextmanager
from typing import Any

import msgspec
from litestar import Litestar
from localoip.app.api.openai.records import OpenAIStore
from localoip.app.api.openai.responses.output import ItemBuilder, failed, finished
from localoip.app.http.errors import classify
from localoip.runtimes.capabilities import TextDelta
from localoip.runtimes.wire.openai.responses.events import Event, lifecycle
from localoip.runtimes.wire.openai.responses.items import Item
from localoip.runtimes.wire.openai.responses.objects import Response
from msgspec.structs import replace

log = logging.getLogger("localoip")


class Run:
    """One response being generated: its latest state and every event so far.

    Any number of readers can follow the events; the generation does not wait for them.
    """

    def __init__(self, response: Response, keep: bool) -> None:
        self.response = response
        self.keep = keep  # stored: every change of status is written
        self.events: list[Event] = []
        self.done = False
        self.task: asyncio.Task[None] | None = None
        self._wake: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    @property
    def id(self) -> str:
        return self.response.id

    @property
    def background(self) -> bool:
        return self.response.background

    def emit(self, event: Event) -> None:
        event.sequence_number = len(self.events)
        self.events.append(event)
        self._notify()

    def _notify(self) -> None:
        wake, self._wake = self._wake, asyncio.get_running_loop().create_future()
        wake.set_result(None)

    async def follow(self, after: int = -1) -> AsyncIterator[Event]:
        """The events after sequence number `after`, then each new one until the run ends."""
        at = after + 1
        while True:
            while at < len(self.events):
                yield self.events[at]
                at += 1
            if self.done:
                return
            await asyncio.shield(self._wake)  # a reader that leaves must not cancel the others'


class Runs:
    """The responses being generated now, by id."""

    def __init__(self, store: OpenAIStore) -> None:
        self.store = store
        self.live: dict[str, Run] = {}

    def start(
        self,
        run: Run,
        deltas: Callable[[], AsyncIterator[TextDelta]],
        builder: Callable[[], ItemBuilder],
        detached: bool,
    ) -> None:
        """Generate in a task, building the output with a new `builder()`. A detached
        (background) run gets a fresh context, so it is not tied to the request that started
        it: that client may leave at once."""
        context = contextvars.Context() if detached else None
        self.live[run.id] = run
        run.task = asyncio.get_running_loop().create_task(
            self._produce(run, deltas, builder()), context=context
        )

    async def _produce(
        self,
        run: Run,
        deltas: Callable[[], AsyncIterator[TextDelta]],
        out: ItemBuilder,
    ) -> None:
        try:
            async with aclosing(deltas()) as stream:
                async for delta in stream:
                    if run.response.status == "queued":  # the model has taken it
                        await self._change(run, replace(run.response, status="in_progress"))
                        run.emit(lifecycle("in_progress", run.response))
                    for event in out.add(delta):
                        run.emit(event)
            for event in out.finish():
                run.emit(event)
            run.response = finished(run.response, out)
            last = "completed" if run.response.status == "completed" else "incomplete"
        except asyncio.CancelledError:
            for event in out.finish(cancelled=True):
                run.emit(event)
            run.response = finished(run.response, out, cancelled=True)
            last = "incomplete"  # the Responses stream has no event of its own for a cancel
        except Exception as exc:
            run.response = failed(run.response, classify(exc), out)
            last = "failed"
        try:
            if run.keep:  # written before the last event, so a reader that sees it finds it
                await asyncio.shield(self.store.update_response(stored(run.response)))
        finally:
            run.emit(lifecycle(last, run.response))
            run.done = True
            self.live.pop(run.id, None)

    async def _change(self, run: Run, response: Response) -> None:
        run.response = response
        if run.keep:
            await self.store.update_response(stored(response))

    async def cancel(self, run: Run) -> Response:
        """Stop a run (the model stops within a token); the response, now cancelled."""
        if run.task is not None and not run.done:
            run.task.cancel()
            await asyncio.gather(run.task, return_exceptions=True)
        return run.response

    @asynccontextmanager
    async def lifespan(self, _: Litestar) -> AsyncIterator[None]:
        """At shutdown, runs still going are cancelled and stored as such."""
        try:
            yield
        finally:
            for run in list(self.live.values()):
                log.info("response %s: cancelled at shutdown", run.id)
                await self.cancel(run)


# -- the store, in wire types: it keeps each object as its JSON ------------------------------


def stored(response: Response) -> dict[str, Any]:
    """A response as the store takes it."""
    return msgspec.to_builtins(response)


async def store_new(store: OpenAIStore, response: Response, items: list[Item]) -> None:
    """OpenAIStore a new response and its input items."""
    await store.add_response(stored(response), msgspec.to_builtins(items))


async def kept(store: OpenAIStore, response_id: str) -> Response | None:
    found = await store.response(response_id)
    return None if found is None else msgspec.convert(found, Response)


async def kept_conversation(
    store: OpenAIStore, response_id: str
) -> tuple[Response, list[Item]] | None:
    """A stored response and its input items, or None."""
    found = await store.conversation(response_id)
    if found is None:
        return None
    response, items = found
    return msgspec.convert(response, Response), msgspec.convert(items, list[Item])
