"""The one bridge from threads (a model's worker, a runner's reader) to the event loop."""

from __future__ import annotations

import asyncio
from typing import Generic, TypeVar

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
