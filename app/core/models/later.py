"""Background work a model starts after a delay: keep_alive's unload, a retry, a restart."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any


class Later:
    """At most one piece of work pending: scheduling another replaces it. The task it starts
    is held here while it runs."""

    def __init__(self) -> None:
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self.due: float | None = None  # when (Unix seconds) the pending work starts

    def schedule(self, seconds: float, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run work() as a task in `seconds`, unless cancelled first."""
        self.cancel()
        self._timer = asyncio.get_running_loop().call_later(seconds, self._start, work)
        self.due = time.time() + seconds

    def cancel(self) -> None:
        """Drop the pending work, if any (not the task already running)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.due = None

    def _start(self, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self._timer = self.due = None
        self._task = asyncio.create_task(work())
