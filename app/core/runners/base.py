"""The runner interface: what a model's handle uses of a runner, in a process of its own
(runners/client.py) or in this one (runners/inprocess.py), and the proxy runtime built on it.

A runner runs one call at a time on the thread that owns its runtime, and generations that
its batching engine takes beside them. The server starts a call with start(), which returns
at once; the call's items and its end reach the given Reply from the thread that has them (a
runner's reader thread, or the in-process runner's own), so a stream reaches the event loop
with no thread in between. The blocking methods of RunnerRuntime, which implement the
capability protocols, are built on the same start().
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import Any, Literal

from localoip.app.core.config import ModelSpec
from localoip.app.core.runners.driver import Reply
from localoip.app.core.runners.wire import METHODS, PROTOCOL_METHODS, Ready
from localoip.runtimes.capabilities import Emit
from localoip.runtimes.facts import ModelFacts

log = logging.getLogger("localoip")

RunnerKind = Literal["process", "in-process"]
"""Where a local model's runtime runs: in a runner process of its own (the default: a crash
takes only that model down), or in the server's process (one process under test)."""

Crashed = Callable[["Runner", int, str], None]
"""Told, from the runner's reader thread, that it died: the runner, its return code, the cause."""


class LoadFailed(Exception):
    """The runner could not load its model (a Python error, not a crash); it has ended."""


class LoadCrashed(Exception):
    """The runner died while it loaded its model."""

    def __init__(self, returncode: int, reason: str) -> None:
        super().__init__(reason)
        self.returncode = returncode
        self.reason = reason


class CallFailed(Exception):
    """A runtime error inside the runner, other than a client error."""


class Runner(ABC):
    """One loaded model's runner, as the server's side sees it: loaded by wait_ready(),
    ended by stop(); its calls are tracked by id until each has ended."""

    pid: int | None  # its process, when it has one of its own

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self.stopping: str | None = None  # why the server ends it, once it does
        self.current: Callable[[], None] | None = None  # cancels the blocking call in flight
        self._open: dict[int, Reply] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._closed: BaseException | None = None  # set once the runner is gone

    # -- what each kind of runner provides ---------------------------------------------------

    @abstractmethod
    def wait_ready(self) -> RunnerRuntime:
        """Block until the model is loaded: its proxy. Raises LoadFailed, LoadCrashed, or
        ModelNotReady when the server stopped it meanwhile."""

    @abstractmethod
    def stop(self, timeout: float = 1.0) -> None:
        """End the runner and free its model; calls still open fail with ModelNotReady."""

    @abstractmethod
    def kill(self, why: str = "was stopped: the server is shutting down") -> None:
        """End the runner without waiting (a cancelled load, a signal)."""

    @abstractmethod
    def _send(self, call_id: int, name: str, args: tuple[Any, ...]) -> None:
        """Start the call in the runner."""

    @abstractmethod
    def _send_cancel(self, call_id: int) -> None:
        """Ask the runner to stop the call; its end still comes to its Reply."""

    # -- calls -------------------------------------------------------------------------------

    def start(self, name: str, args: tuple[Any, ...], reply: Reply) -> Callable[[], None]:
        """Start a call of the runtime's method `name`; returns the function that cancels it.

        Every call ends exactly once at `reply` (done or failed), a cancelled one included.
        Raises ModelNotReady or ModelCrashed when the runner is gone."""
        call_id = next(self._ids)
        with self._lock:
            if self._closed is not None:
                raise self._closed
            self._open[call_id] = reply
        self._send(call_id, name, args)
        return lambda: self._send_cancel(call_id)

    def call(
        self, name: str, args: tuple[Any, ...], on_item: Callable[..., None] | None = None
    ) -> Any:
        """Run one call to its end, blocking; on_item receives a callback's calls (an image's
        steps). interrupt() cancels it."""
        answer = _Waiting()
        self.current = self.start(name, args, answer)
        try:
            while True:
                kind, value = answer.inbox.get()
                if kind == "item":
                    if on_item is not None:
                        on_item(*value)
                elif kind == "done":
                    return value
                else:
                    raise value
        finally:
            self.current = None

    def stream(self, name: str, args: tuple[Any, ...]) -> Iterator[Any]:
        """The items of a streaming call, blocking; closing early cancels it."""
        answer = _Waiting()
        cancel = self.start(name, args, answer)
        ended = False
        try:
            while True:
                kind, value = answer.inbox.get()
                if kind == "item":
                    yield value
                    continue
                ended = True
                if kind == "done":
                    return
                raise value
        finally:
            if not ended:
                cancel()

    def interrupt(self) -> None:
        """Cancel the blocking call in flight, if any (its caller went away); the thread
        waiting for it is freed by the runner's answer, within a token or a step."""
        cancel = self.current
        if cancel is not None:
            cancel()

    # -- answers, from the thread that has them ----------------------------------------------

    def _item(self, call_id: int, value: Any) -> None:
        reply = self._open.get(call_id)
        if reply is not None:
            self._hand(reply.item, value)

    def _done(self, call_id: int, value: Any) -> None:
        with self._lock:
            reply = self._open.pop(call_id, None)
        if reply is not None:
            self._hand(reply.done, value)

    def _failed(self, call_id: int, error: BaseException) -> None:
        with self._lock:
            reply = self._open.pop(call_id, None)
        if reply is not None:
            self._hand(reply.failed, error)

    def _close(self, error: BaseException) -> None:
        """The runner is gone: every open call fails with `error`, and later ones at start."""
        with self._lock:
            self._closed = error
            replies, self._open = list(self._open.values()), {}
        for reply in replies:
            self._hand(reply.failed, error)

    def _hand(self, to: Callable[[Any], None], value: Any) -> None:
        try:
            to(value)
        except Exception:  # one call's fault must not stop every other call's answers
            log.exception("model %r: a runner's answer could not be handed over", self.spec.name)


class _Waiting:
    """A Reply read by a thread that blocks for it."""

    def __init__(self) -> None:
        self.inbox: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()

    def item(self, value: Any) -> None:
        self.inbox.put(("item", value))

    def done(self, value: Any) -> None:
        self.inbox.put(("done", value))

    def failed(self, error: BaseException) -> None:
        self.inbox.put(("failed", error))


class _Emitting:
    """A Reply handed to a batched generation's emit: deltas, then None or the error."""

    def __init__(self, emit: Emit) -> None:
        self.item = emit
        self.failed = emit

    def done(self, _value: Any) -> None:
        self.item(None)


class RunnerRuntime:
    """A runtime that lives in a runner; built with the protocols it implements.

    A batched generation that the runner's engine declines ends at once with Declined: run it
    as a stream instead."""

    def __init__(self, runner: Runner, slots: int, slots_reason: str, facts: ModelFacts) -> None:
        self.runner = runner
        self.slots = slots  # generations the runner runs at once (its batching engine's slots)
        self.slots_reason = slots_reason
        self._facts = facts

    def facts(self) -> ModelFacts:
        """What the runner's model is, as it said when it had loaded it."""
        return self._facts

    @property
    def pid(self) -> int | None:
        return self.runner.pid

    def start(self, name: str, args: tuple[Any, ...], reply: Reply) -> Callable[[], None]:
        """Start a call without waiting for it (see Runner.start)."""
        return self.runner.start(name, args, reply)

    def interrupt(self) -> None:
        self.runner.interrupt()

    def unload(self) -> None:
        self.runner.stop()


def _remote(name: str) -> Callable[..., Any]:
    spec = METHODS[name]
    if name.endswith("_batched"):

        def batched(self: RunnerRuntime, request: Any, emit: Emit) -> Callable[[], None]:
            return self.runner.start(name, (request,), _Emitting(emit))

        return batched
    if spec.callback:

        def with_callback(self: RunnerRuntime, *args: Any) -> Any:
            *given, callback = args if len(args) > spec.arity else (*args, None)
            return self.runner.call(name, tuple(given), callback)

        return with_callback
    if spec.item is not None:
        return lambda self, *args: self.runner.stream(name, args)
    return lambda self, *args: self.runner.call(name, args)


def proxy(runner: Runner, ready: Ready) -> RunnerRuntime:
    """A RunnerRuntime with exactly the methods of the protocols the runner's runtime has."""
    names = {m for protocol in ready.protocols for m in PROTOCOL_METHODS[protocol]}
    if ready.slots <= 1:  # the one-at-a-time path is the only one
        names -= set(PROTOCOL_METHODS["BatchedGeneration"])
    cls = type(
        f"RunnerRuntime[{','.join(sorted(ready.protocols))}]",
        (RunnerRuntime,),
        {name: _remote(name) for name in sorted(names)},
    )
    return cls(runner, ready.slots, ready.slots_reason, ready.facts or ModelFacts())
