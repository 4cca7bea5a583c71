"""The thread that owns a loaded runtime: calls run one at a time, item by item, and the
batching engine is stepped between their items.

llama.cpp crashes when two threads share a model, so every call and every engine step runs
on this one thread. Both runners use it: the runner process on its main thread, fed by its
reader thread (runners/process.py), and the in-process runner on a thread of its own
(runners/inprocess.py). A call's answer goes to its Reply from the thread that makes it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from localoip.app.core.runners.wire import METHODS, PROTOCOLS, Method, Ready
from localoip.runtimes.capabilities import Runtime, TextDelta


class Reply(Protocol):
    """Where one call's answer goes: its items (a stream's deltas, an image's (step, total)),
    then exactly one of done(result) or failed(error). Called from the thread that has them."""

    def item(self, value: Any) -> None: ...
    def done(self, value: Any) -> None: ...
    def failed(self, error: BaseException) -> None: ...


class Cancelled(Exception):
    """The server cancelled the call (its client went away)."""


class Declined(Exception):
    """The batching engine does not take this generation (a seed that must reproduce, a chat
    handler it cannot use): run it as a stream instead, in the model's turn."""


def ready(runtime: Runtime) -> Ready:
    """What a loaded runtime tells the server: the protocols it implements, its slots and
    how they were sized, and what its model is."""
    protocols = [p.__name__ for p in PROTOCOLS if isinstance(runtime, p)]
    slots = getattr(runtime, "slots", 1)
    reason = getattr(runtime, "slots_reason", "")
    return Ready(protocols, slots, reason, runtime.facts())


@dataclass(slots=True)
class _Job:
    call_id: int
    method: Method
    args: tuple[Any, ...]
    reply: Reply
    flag: threading.Event  # set: cancelled


class _Once:
    """A batched generation's emit, forwarded to its Reply until it ends: by the engine, or
    by a cancel, whichever comes first (the engine says nothing of a cancelled request)."""

    def __init__(self, reply: Reply, ended: Callable[[], None]) -> None:
        self.reply = reply
        self._ended = ended
        self._lock = threading.Lock()
        self._over = False

    def emit(self, item: TextDelta | BaseException | None) -> None:
        if isinstance(item, TextDelta):
            if not self._over:
                self.reply.item(item)
        else:
            self.end(item)

    def end(self, error: BaseException | None) -> None:
        with self._lock:
            if self._over:
                return
            self._over = True
        self._ended()
        if error is None:
            self.reply.done(None)
        else:
            self.reply.failed(error)


class Driver:
    """One loaded runtime, driven by the thread that calls serve().

    call(), batched() and cancel() may be called from any thread. Calls run in the order they
    came, one at a time; the server sends one call per model's turn, except an embedding run,
    whose next batch waits here behind the one encoding (models/batching.py). Generations the
    batching engine takes run beside them.
    """

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.engine: Any = getattr(runtime, "engine", None)
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()  # None: a wake-up
        self._cancels: dict[int, Callable[[], None]] = {}
        self._stopped = False
        if self.engine is not None:  # before any generation reaches it: serve() steps it
            self.engine.adopt(lambda: self._jobs.put(None))

    # -- from any thread -------------------------------------------------------------------

    def call(self, call_id: int, name: str, args: tuple[Any, ...], reply: Reply) -> None:
        """Run a call of the runtime's method `name` on the driver's thread."""
        flag = threading.Event()
        self._cancels[call_id] = flag.set
        self._jobs.put(_Job(call_id, METHODS[name], args, reply, flag))

    def batched(self, call_id: int, name: str, request: Any, reply: Reply) -> None:
        """Hand a generation to the batching engine (`name` is chat_batched or
        complete_batched); one it does not take fails at once with Declined."""
        once = _Once(reply, lambda: self._cancels.pop(call_id, None))
        try:
            cancel = getattr(self.runtime, name)(request, once.emit)
        except Exception as exc:
            once.end(exc)
            return
        if cancel is None:
            once.end(Declined(f"{name} is not for this request"))
            return

        def cancelled() -> None:
            cancel()
            once.end(Cancelled())

        self._cancels[call_id] = cancelled

    def cancel(self, call_id: int) -> None:
        """Stop a call: a queued one never starts, a running one stops at its next item (a
        token, an image's step). Its Reply still hears how it ended."""
        cancel = self._cancels.get(call_id)
        if cancel is not None:
            cancel()

    def stop(self) -> None:
        """Make serve() return at its next turn."""
        self._stopped = True
        self._jobs.put(None)

    # -- on the driver's thread ------------------------------------------------------------

    def serve(self) -> None:
        """Run calls and step the engine until stop(). Each turn advances the call in
        progress by one item and the engine by one decode step, so neither waits for the
        other to finish."""
        engine = self.engine
        current: Iterator[None] | None = None  # the call in progress, one item per turn
        while not self._stopped:
            busy = engine is not None and engine.busy
            if current is None:
                try:
                    job = self._jobs.get(block=not busy)
                except queue.Empty:
                    job = None
                if job is not None:
                    current = self._run(job)
            if current is not None and next(current, StopIteration) is StopIteration:
                current = None
            if busy:
                engine.step()
        if current is not None:
            current.close()

    def _run(self, job: _Job) -> Iterator[None]:
        """Answer a call, pausing after each item."""
        try:
            if job.flag.is_set():
                raise Cancelled
            yield from self._answer(job)
        except Exception as exc:
            job.reply.failed(exc)
        finally:
            self._cancels.pop(job.call_id, None)

    def _answer(self, job: _Job) -> Iterator[None]:
        method, reply, flag = job.method, job.reply, job.flag
        fn = getattr(self.runtime, method.name)
        if method.callback:  # an image's steps: reported, and the place to stop

            def on_step(step: int, total: int) -> None:
                if flag.is_set():
                    raise Cancelled
                reply.item((step, total))

            reply.done(fn(*job.args, on_step))
        elif method.item is not None:
            items = fn(*job.args)
            try:
                for item in items:
                    if flag.is_set():
                        raise Cancelled
                    reply.item(item)
                    yield
            finally:
                close = getattr(items, "close", None)
                if close is not None:
                    close()
            reply.done(None)
        else:
            reply.done(fn(*job.args))
