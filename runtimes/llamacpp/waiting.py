"""The batching engine's waiting requests, and who steps the engine: a driver thread that
adopted it (a runner's main thread, woken on each arrival or cancel), or a thread of its own,
started with the first request."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from localoip.runtimes.capabilities import Emit, TextDelta
from localoip.runtimes.llamacpp.generation import Generation

Prepare = Callable[[], Generation]
"""Builds a request's Generation on the engine's thread; may raise InputError."""


class Request:
    """A queued or running generation."""

    def __init__(self, prepare: Prepare, emit: Emit, speculate: bool = True) -> None:
        self.prepare = prepare
        self._emit = emit
        self.cancelled = False
        self.speculate = speculate  # False: never drafts, even when the engine speculates

    def emit(self, item: TextDelta | BaseException | None) -> None:
        """Hand an item to the caller, unless it has cancelled: then it hears nothing more."""
        if not self.cancelled:
            self._emit(item)


class Running(Protocol):
    """What the queue needs to know of a running generation."""

    request: Request


R = TypeVar("R", bound=Running)


class Waiting:
    """Requests waiting for a slot, first come first served, shared between the callers'
    threads and the one that steps the engine."""

    def __init__(self) -> None:
        self._queue: deque[Request] = deque()
        self._cond = threading.Condition()
        self._closing = False
        self._wake: Callable[[], None] | None = None  # the driver's, once one has adopted it
        self._thread: threading.Thread | None = None

    def __bool__(self) -> bool:
        return bool(self._queue)

    def adopt(self, wake: Callable[[], None]) -> None:
        """Have `wake()` tell the driver that a request arrived or was cancelled."""
        self._wake = wake

    def add(self, request: Request, own: Callable[[], None]) -> None:
        """Queue a request; without a driver, start a thread running `own` the first time.
        RuntimeError once the engine is closing."""
        with self._cond:
            if self._closing:
                raise RuntimeError("the batching engine is closed")
            self._queue.append(request)
            if self._wake is None and self._thread is None:
                self._thread = threading.Thread(target=own, name="llama-batch", daemon=True)
                self._thread.start()
            self._cond.notify()
        self._notify()

    def cancel(self, request: Request) -> None:
        """Mark a waiting or running request cancelled: it hears nothing more."""
        with self._cond:
            request.cancelled = True
            self._cond.notify()
        self._notify()

    def _notify(self) -> None:
        if self._wake is not None:
            self._wake()

    def take(self, free: int, running: Sequence[R]) -> tuple[list[Request], list[R]]:
        """Drop cancelled waiting requests; then up to `free` requests to admit, and the
        running generations whose callers cancelled."""
        with self._cond:
            for request in [r for r in self._queue if r.cancelled]:
                self._queue.remove(request)
            cancelled = [s for s in running if s.request.cancelled]
            admitted = []
            while self._queue and len(admitted) < free:
                admitted.append(self._queue.popleft())
        return admitted, cancelled

    def wait(self, busy: Callable[[], bool]) -> bool:
        """For the engine's own thread: wait until `busy()`; False once the engine closes."""
        with self._cond:
            while not (self._closing or busy()):
                self._cond.wait()
            return not self._closing

    def stop(self) -> bool:
        """Close, and wait for the engine's own thread to end; whether it had one (which then
        shut the engine down as it ended)."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        if self._thread is None:
            return False
        self._thread.join()
        return True

    def drain(self) -> list[Request]:
        """Close, and take every request still waiting that was not cancelled."""
        with self._cond:
            self._closing = True
            waiting = [r for r in self._queue if not r.cancelled]
            self._queue.clear()
        return waiting
