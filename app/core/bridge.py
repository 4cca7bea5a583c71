"""The bridge from threads (a model's worker, a runner's reader) to the event loop: a
Channel of items, and the Answer of one call."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Channel(Generic[T]):
    """Items put from any thread and read in the event loop, in order: values, then None (the
    end) or the exception that ended them. Made in the loop that reads it."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[T | BaseException | None] = asyncio.Queue()

    def put(self, item: T | BaseException | None) -> None:
        """Hand an item over; safe from any thread."""
        self._loop.call_soon_threadsafe(self._queue.put_nowait, item)

    async def get(self) -> T | BaseException | None:
        return await self._queue.get()


class Answer(Generic[T]):
    """A runner call's one result for the event loop (a Reply, see runners/driver.py): done()
    or failed() from any thread settles `future`, after `ended()` runs on the loop. Items (an
    image's steps) are not wanted. Made in the loop that awaits it."""

    def __init__(self, ended: Callable[[], None]) -> None:
        self._loop = asyncio.get_running_loop()
        self.future: asyncio.Future[T] = self._loop.create_future()
        self._ended = ended

    def item(self, _value: Any) -> None:
        pass

    def done(self, value: T) -> None:
        self._loop.call_soon_threadsafe(self._settle, value, None)

    def failed(self, error: BaseException) -> None:
        self._loop.call_soon_threadsafe(self._settle, None, error)

    def _settle(self, value: T, error: BaseException | None) -> None:
        self._ended()
        if self.future.done():
            return
        if error is not None:
            self.future.set_exception(error)
        else:
            self.future.set_result(value)
