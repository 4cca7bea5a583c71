"""Notice a client that hangs up while its request waits, so queued work is dropped unrun."""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable, Callable
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypeVar

from localoip.app.core.errors import ClientGone

if TYPE_CHECKING:
    from collections.abc import Iterator

    from litestar.types import Message, Receive

log = logging.getLogger("localoip")
T = TypeVar("T")

_watch: ContextVar[Watch | None] = ContextVar("localoip_client", default=None)


class Watch:
    """One HTTP request's receive channel, read for `http.disconnect` once the body is in."""

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self._body_read = False
        self.gone = False

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request" and not message.get("more_body", False):
            self._body_read = True
        elif message["type"] == "http.disconnect":
            self.gone = True
        return message

    async def wait_gone(self) -> None:
        """Return when the client disconnects; never, while the app still reads the body."""
        if not self._body_read:
            await asyncio.Future()
        while not self.gone:
            await self.receive()


def detached() -> contextvars.Context:
    """A copy of the current context with no client in it: a task run in it is work the
    server owns, which outlives the request that started it."""
    context = contextvars.copy_context()
    context.run(_watch.set, None)
    return context


async def unless_client_gone(work: Awaitable[T], undo: Callable[[], None] | None = None) -> T:
    """Await work, unless the current request's client hangs up first: then cancel it, call
    undo() if it had completed after all, and raise ClientGone."""
    watch = _watch.get()
    if watch is None:
        return await work
    task = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(watch.wait_gone())
    try:
        await asyncio.wait({task, gone}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        await _abandon(task, undo)
        raise
    finally:
        gone.cancel()
    if task.done():
        return task.result()
    await _abandon(task, undo)
    log.info("dropped a queued request: the client went away")
    raise ClientGone("the client closed the connection while the request was queued")


async def _abandon(task: asyncio.Future[Any], undo: Callable[[], None] | None) -> None:
    task.cancel()
    try:
        await task
    except BaseException:  # cancelled, or failed: nothing to undo
        return
    if undo is not None:
        undo()


@contextmanager
def watching(watch: Watch) -> Iterator[None]:
    """Make `watch` the current request's client while the block runs (the HTTP layer's
    middleware wraps each request in it)."""
    token = _watch.set(watch)
    try:
        yield
    finally:
        _watch.reset(token)
