"""keep_alive: how long an idle model stays loaded (its own, or the last request's), and the
timer that unloads it."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Coroutine
from typing import Any

from localoip.app.core.config import ModelSpec
from localoip.app.core.models.later import Later


class Idle:
    """One model's keep_alive. The seconds come from the last request that gave some
    (Ollama's per-request `keep_alive`) until the model unloads, else from its
    `options.keep_alive`; negative (or none) keeps it loaded. `schedule()` starts the timer
    when the last request leaves, `cancel()` stops it when one comes."""

    def __init__(
        self,
        spec: ModelSpec,
        pending: Callable[[], int],
        ready: Callable[[], bool],
        unload: Callable[[], Coroutine[Any, Any, None]],
    ) -> None:
        self.spec = spec
        self.kept: float | None = None  # the last request's keep_alive, if it gave one
        self._pending = pending  # requests admitted and not answered
        self._ready = ready  # loaded, so there is something to unload
        self._unload = unload
        self._timer = Later()

    def keep(self, seconds: float | None) -> None:
        """How long the model stays loaded once idle, as a request asks: seconds (0: unload
        as soon as it is idle), negative to stay loaded until unloaded by hand, None for the
        model's own keep_alive. An idle model's timer starts again from now, as in Ollama."""
        self.kept = seconds
        if self._pending() == 0:
            self.schedule()

    def forget(self) -> None:
        """The model unloaded: a request's keep_alive held only while it stayed loaded."""
        self.kept = None

    def seconds(self) -> float | None:
        """How long the model stays loaded once idle; None when it stays loaded."""
        seconds = self.kept if self.kept is not None else self.spec.options.keep_alive_seconds
        return None if seconds is None or seconds < 0 or math.isinf(seconds) else seconds

    def expires(self) -> float | None:
        """When (Unix seconds) the model unloads if no request comes: the timer's time, or
        while it works, seconds() from now; None when it stays loaded."""
        if self._timer.due is not None:
            return self._timer.due
        seconds = self.seconds()
        return None if seconds is None else time.time() + seconds

    def schedule(self) -> None:
        """Unload the model once it has been idle for seconds()."""
        seconds = self.seconds()
        if seconds is None:
            self.cancel()
        elif self._ready():
            self._timer.schedule(seconds, self._unload)

    def cancel(self) -> None:
        self._timer.cancel()
