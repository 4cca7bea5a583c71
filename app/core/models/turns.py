"""Admission and turns: the queue limit (429), the FIFO lock or a remote model's concurrency
limit, and the worker threads."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from typing import TypeVar

from localoip.app.core.disconnect import unless_client_gone
from localoip.app.core.errors import QueueFull

T = TypeVar("T")


class Turns:
    """Who may use one model, and when.

    At most `max_queue` requests wait or run; more are refused with QueueFull (429, with a
    Retry-After from a moving average of service time). Work takes the model's lock in FIFO
    order, the one queue a request waits in (a batched generation waits for an engine slot
    instead), and holds it until the work has ended: a runner's call until the runner says so,
    a blocking call on the model's one worker thread. `on_busy` runs when the first request
    is admitted, `on_idle` when the last one leaves (keep_alive's timer). Lifecycle changes
    (load, unload) hold the same lock (`exclusive`).

    A remote model (`width` > 1, its `max_concurrency`) is an HTTP client, not a native model
    one thread at a time: up to `width` calls run at once, each on a worker of its own or on
    the event loop (`here`), in FIFO order past that; a lifecycle change holds the lock,
    which calls wait for, once the calls in flight have ended.
    """

    def __init__(
        self,
        name: str,
        max_queue: int,
        slots: Callable[[], int],
        on_busy: Callable[[], None],
        on_idle: Callable[[], None],
        width: int = 1,
    ) -> None:
        self.name = name
        self.max_queue = max_queue
        self.slots = slots  # requests the runtime runs at once now (its engine's slots)
        self.pending = 0  # admitted and not yet answered: queued or running
        self.running = 0  # of which the model is working on
        self.waiting = 0  # work waiting for the lock (an embedding run gives way to it)
        self.lock = asyncio.Lock()
        self.last_used = time.monotonic()  # when a request last left, for least-recently-used
        self._service = 1.0  # a moving average of seconds per request, for Retry-After
        self._measured = False  # _service is still its guess until a request has been served
        self._calls = asyncio.Semaphore(width) if width > 1 else None  # a remote's calls
        self._width = width
        self._worker = ThreadPoolExecutor(width, thread_name_prefix=f"model-{name}")
        self._on_busy = on_busy
        self._on_idle = on_idle
        self._stopping: set[asyncio.Future[None]] = set()  # of Turns stopped, not yet ended

    @property
    def queued(self) -> int:
        return self.pending - self.running

    @asynccontextmanager
    async def admitted(self) -> AsyncIterator[None]:
        """Count a request against the queue limit for as long as it waits or runs.

        Raises QueueFull past `max_queue`."""
        if self.pending >= self.max_queue:
            wait = self._service * (self.queued + 1) / self.slots()
            raise QueueFull(
                f"model {self.name!r} has {self.pending} requests queued or running, its "
                f"limit (max_queue = {self.max_queue}); retry later",
                retry_after=max(1, math.ceil(wait)),
            )
        self._on_busy()
        self.pending += 1
        try:
            yield
        finally:
            self.pending -= 1
            self.last_used = time.monotonic()
            if self.pending == 0:
                self._on_idle()

    def served(self, seconds: float) -> None:
        """Record a request's service time (seconds), the moving average Retry-After reads."""
        if not self._measured:
            self._service, self._measured = seconds, True
        self._service = 0.8 * self._service + 0.2 * seconds

    @asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        """The model to itself, for a lifecycle change (load, unload): the lock, and then
        every one of a remote's places, so no call is still in flight on the client the
        change replaces or closes. Calls that come meanwhile wait for the lock."""
        async with self._waiting_for(self.lock):
            calls, taken = self._calls, 0
            try:
                while calls is not None and taken < self._width:
                    await calls.acquire()
                    taken += 1
                yield
            finally:
                for _ in range(taken if calls is not None else 0):
                    calls.release()

    async def acquire(self) -> None:
        """Take the model's lock (a remote's: one of its `width` places, once no lifecycle
        change holds the lock) in FIFO order; give up the place if the client hangs up."""
        if self._calls is not None:
            if self.lock.locked():
                await unless_client_gone(self.lock.acquire(), self.lock.release)
                self.lock.release()
            await unless_client_gone(self._calls.acquire(), self._calls.release)
            return
        if not self.lock.locked():
            await self.lock.acquire()
            return
        self.waiting += 1
        try:
            await unless_client_gone(self.lock.acquire(), self.lock.release)
        finally:
            self.waiting -= 1

    @asynccontextmanager
    async def _waiting_for(self, lock: asyncio.Lock) -> AsyncIterator[None]:
        """Hold `lock`, counted in `waiting` until it is taken."""
        self.waiting += 1
        try:
            await lock.acquire()
        finally:
            self.waiting -= 1
        try:
            yield
        finally:
            lock.release()

    def release(self) -> None:
        (self._calls or self.lock).release()

    def begin(self) -> Turn:
        """Count the model's work as running from now, holding the lock taken by acquire.
        Returns its Turn, whose finish() is called once when the work has ended."""
        self.running += 1
        return Turn(self)

    def run(self, fn: Callable[[], T]) -> tuple[asyncio.Future[T], Turn]:
        """Start fn on the worker, which releases the lock taken by acquire when fn ends;
        returns its result to come, and its Turn.

        A thread cannot be cancelled, and a caller can be (a client that hung up): this way
        no second call ever shares the model with a thread that is still running."""
        turn = self.begin()

        def run() -> T:
            try:
                return fn()
            finally:
                turn.finish()

        return asyncio.get_running_loop().run_in_executor(self._worker, run), turn

    @contextmanager
    def here(self) -> Iterator[None]:
        """Count the block as the work of the turn taken by acquire, on the event loop (a
        remote model's call made by its asyncio client, with no thread between), and give
        the turn up when it ends: answered, failed or cancelled (a client that hung up), so
        a cancelled call never holds a place."""
        self.running += 1
        start = time.perf_counter()
        try:
            yield
        finally:
            self.running -= 1
            self.served(time.perf_counter() - start)
            self.release()

    def _finished(self, turn: Turn, seconds: float) -> None:
        self.running -= 1
        self.served(seconds)
        self._stopping.discard(turn.ended)
        turn.ended.set_result(None)
        self.release()

    async def on_worker(self, fn: Callable[[], T]) -> T:
        """fn on the worker, for lifecycle steps that already hold the lock."""
        return await asyncio.get_running_loop().run_in_executor(self._worker, fn)

    async def idle(self) -> None:
        """Wait until the work stopped early (see Turn.stopped) has ended: a stream within
        a token, an image at its next step. Work that runs on, or waits for its turn, is not
        waited for: a Stop must not wait behind the next request in the queue."""
        while self._stopping:
            await asyncio.wait(set(self._stopping))


class Turn:
    """One piece of work in the model's turn (it holds the lock), from Turns.begin() until
    finish(), which releases the lock."""

    def __init__(self, turns: Turns) -> None:
        self._turns = turns
        self._loop = asyncio.get_running_loop()
        self._start = time.perf_counter()
        self.ended: asyncio.Future[None] = self._loop.create_future()

    def finish(self) -> None:
        """The work has ended: give the turn up and record the time taken (for Retry-After).
        Called once, from any thread."""
        seconds = time.perf_counter() - self._start
        self._loop.call_soon_threadsafe(self._turns._finished, self, seconds)

    def stopped(self) -> None:
        """Its consumer stopped the work early (a client gone, a Stop); the work ends soon
        after (within a token, a step), and Turns.idle() waits for that. On the loop."""
        if not self.ended.done():
            self._turns._stopping.add(self.ended)
