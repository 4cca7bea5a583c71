"""The server's side of a runner: the child process, its socket, and a proxy runtime.

The proxy implements the same capability protocols as the runtime in the runner, so the
registry calls it as it would call a runtime in this process. Its blocking calls run on the
model's worker thread; one reader thread per runner hands each frame to the call it answers.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import queue
import socket
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

import msgspec
from localoip.app.core.config import ModelSpec
from localoip.app.core.errors import ModelCrashed, ModelNotReady
from localoip.app.core.runners.crash import describe
from localoip.app.core.runners.wire import (
    METHODS,
    PROTOCOL_METHODS,
    Call,
    Cancel,
    Connection,
    Done,
    Failed,
    Frame,
    Item,
    Load,
    Ready,
    encode,
)
from localoip.runtimes.capabilities import Emit, InputError, ModelFacts

STDERR_LINES = 20
LIVE: set[RunnerProcess] = set()
"""Every runner this server started and has not stopped, for a stop on a signal."""

log = logging.getLogger("localoip")


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


Sink = Callable[[Frame | BaseException], None]


class RunnerProcess:
    """One runner: started at construction (on the event loop's thread, which the child's
    parent-death signal follows), loaded by wait_ready(), ended by stop()."""

    def __init__(self, spec: ModelSpec, on_crash: Callable[[RunnerProcess, int, str], None]):
        self.spec = spec
        self.on_crash = on_crash
        ours, theirs = socket.socketpair()
        with theirs:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "localoip.app.cli.main",
                    "runner",
                    "--model",
                    spec.name,
                    "--fd",
                    str(theirs.fileno()),
                    "--parent",
                    str(os.getpid()),
                ],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
        self.pid = self.process.pid
        self.conn = Connection(ours)
        self.tail: deque[str] = deque(maxlen=STDERR_LINES)
        self._stderr = threading.Thread(target=self._copy_stderr, daemon=True)
        self._stderr.start()
        self._sinks: dict[int, Sink] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._closed: BaseException | None = None  # set once the runner is gone
        self.stopping: str | None = None  # why the server ends it, once it does
        self.current: int | None = None  # the blocking call in flight, for interrupt()
        LIVE.add(self)
        self.conn.send(
            Load(
                spec.runtime,
                spec.source.value,
                spec.source.kind,
                msgspec.Raw(msgspec.msgpack.encode(spec.options)),
            )
        )

    def _copy_stderr(self) -> None:
        """Pass the runner's stderr on to ours, keeping its last lines for a crash report."""
        assert self.process.stderr is not None
        out = sys.stderr.buffer
        for line in self.process.stderr:
            self.tail.append(line.decode(errors="replace"))
            try:
                out.write(line)
                out.flush()
            except (OSError, ValueError):
                pass

    # -- life ------------------------------------------------------------------------------

    def wait_ready(self) -> RunnerRuntime:
        """Block until the model is loaded: its proxy; LoadFailed, or ModelCrashed if it died."""
        frame = self.conn.receive()
        if isinstance(frame, Ready):
            threading.Thread(
                target=self._read, name=f"runner-{self.spec.name}", daemon=True
            ).start()
            return proxy(self, frame)
        if isinstance(frame, Failed):
            self.stop()
            raise LoadFailed(frame.message)
        returncode, reason = self._ended("while loading")
        if self.stopping:
            raise ModelNotReady(f"model {self.spec.name!r} {self.stopping} while it loaded")
        self.stop()
        raise LoadCrashed(returncode, reason)

    def returncode(self) -> int:
        return self.process.returncode if self.process.returncode is not None else 0

    def _ended(self, during: str = "") -> tuple[int, str]:
        """Wait for the process to end after its socket closed: its exit status in words."""
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:  # closed its socket yet lives on: end it
            self.process.kill()
            self.process.wait()
        self._stderr.join(timeout=1)
        return self.process.returncode, describe(self.process.returncode, self.tail, during)

    def _read(self) -> None:
        """Hand frames to their calls; at the end, fail what is in flight and report a crash."""
        while (frame := self.conn.receive()) is not None:
            sink = self._sinks.get(getattr(frame, "id", -1))
            if sink is not None:
                try:
                    sink(frame)
                except Exception:  # one call's fault must not stop every other call's frames
                    log.exception(
                        "model %r: a runner frame could not be handed over", self.spec.name
                    )
        returncode, reason = self._ended()
        if self.stopping:
            error: BaseException = ModelNotReady(f"model {self.spec.name!r} {self.stopping}")
        else:
            error = ModelCrashed(f"model {self.spec.name!r} crashed: {reason}")
        with self._lock:
            self._closed = error
            sinks, self._sinks = list(self._sinks.values()), {}
        for sink in sinks:
            sink(error)
        LIVE.discard(self)
        if not self.stopping:
            self.on_crash(self, returncode, reason)

    def stop(self, timeout: float = 1.0) -> None:
        """End the runner: it exits when its socket closes; SIGKILL if it does not at once."""
        self.stopping = self.stopping or "was unloaded"
        self.conn.close()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        LIVE.discard(self)

    def kill(self, why: str = "was stopped: the server is shutting down") -> None:
        """End the runner now, without waiting (from a signal handler, or a cancelled load)."""
        self.stopping = self.stopping or why
        self.process.kill()

    # -- calls -----------------------------------------------------------------------------

    def _new_call(self) -> int:
        return next(self._ids)

    def _open(self, call_id: int, method: str, args: tuple[Any, ...], sink: Sink) -> None:
        """Send a call; its frames go to sink from the reader thread, possibly before this
        returns (so a sink knows its call id beforehand)."""
        with self._lock:
            if self._closed is not None:
                raise self._closed
            self._sinks[call_id] = sink
        with contextlib.suppress(OSError):  # the reader notices the end and fails this call
            self.conn.send(Call(call_id, method, encode(args)))

    def _close(self, call_id: int) -> None:
        with self._lock:
            self._sinks.pop(call_id, None)

    def cancel(self, call_id: int, wait: bool = False) -> None:
        """Stop a call in the runner; with wait, its caller still reads how it ended."""
        if not wait:
            self._close(call_id)
        with contextlib.suppress(OSError):
            self.conn.send(Cancel(call_id))

    def interrupt(self) -> None:
        """Cancel the blocking call in flight, if any (its caller went away); the worker
        waiting for it is freed by the runner's answer, within a token or a step."""
        call_id = self.current
        if call_id is not None:
            self.cancel(call_id, wait=True)

    def call(
        self, method: str, args: tuple[Any, ...], on_item: Callable[..., None] | None = None
    ) -> Any:
        """Run one call to its end; on_item receives a callback's calls (an image's steps)."""
        spec = METHODS[method]
        inbox: queue.SimpleQueue[Frame | BaseException] = queue.SimpleQueue()
        call_id = self._new_call()
        self._open(call_id, method, args, inbox.put)
        self.current = call_id
        try:
            while True:
                frame = inbox.get()
                if isinstance(frame, Item):
                    if on_item is not None and spec.item is not None:
                        on_item(*spec.item.decode(frame.value))
                elif isinstance(frame, Done):
                    return spec.result.decode(frame.value)
                else:
                    raise self._error(frame)
        finally:
            self.current = None
            self._close(call_id)

    def stream(self, method: str, args: tuple[Any, ...]) -> Iterator[Any]:
        """The items of a streaming call; closing early cancels it in the runner."""
        spec = METHODS[method]
        assert spec.item is not None
        inbox: queue.SimpleQueue[Frame | BaseException] = queue.SimpleQueue()
        call_id = self._new_call()
        self._open(call_id, method, args, inbox.put)
        ended = False
        try:
            while True:
                frame = inbox.get()
                if isinstance(frame, Item):
                    yield spec.item.decode(frame.value)
                    continue
                ended = True
                if isinstance(frame, Done):
                    return
                raise self._error(frame)
        finally:
            if ended:
                self._close(call_id)
            else:
                self.cancel(call_id)

    def batched(self, method: str, request: Any, emit: Emit) -> Callable[[], None]:
        """Queue a generation in the runner's batching engine; emit gets its deltas, then None
        or an error, on the reader thread. Returns the function that cancels it."""
        spec = METHODS[method]
        assert spec.item is not None
        decode = spec.item.decode

        def sink(frame: Frame | BaseException) -> None:
            if isinstance(frame, Item):
                emit(decode(frame.value))
                return
            self._close(call_id)
            emit(None if isinstance(frame, Done) else self._error(frame))

        call_id = self._new_call()
        self._open(call_id, method, (request,), sink)
        return lambda: self.cancel(call_id)

    def _error(self, frame: Frame | BaseException) -> BaseException:
        if isinstance(frame, BaseException):
            return frame
        assert isinstance(frame, Failed)
        if frame.kind == "input":
            return InputError(frame.message, frame.param, frame.code)
        return CallFailed(frame.message)


class RunnerRuntime:
    """A runtime that lives in a runner process; built with the protocols it implements."""

    def __init__(
        self, runner: RunnerProcess, slots: int, slots_reason: str, facts: ModelFacts
    ) -> None:
        self.runner = runner
        self.slots = slots  # generations the runner runs at once (its batching engine's slots)
        self.slots_reason = slots_reason
        self._facts = facts

    def facts(self) -> ModelFacts:
        """What the runner's model is, as it said when it had loaded it."""
        return self._facts

    @property
    def pid(self) -> int:
        return self.runner.pid

    def interrupt(self) -> None:
        self.runner.interrupt()

    def unload(self) -> None:
        self.runner.stop()


def _remote(name: str) -> Callable[..., Any]:
    spec = METHODS[name]
    if name.endswith("_batched"):

        def batched(self: RunnerRuntime, request: Any, emit: Emit) -> Callable[[], None]:
            return self.runner.batched(name, request, emit)

        return batched
    if spec.callback:

        def with_callback(self: RunnerRuntime, *args: Any) -> Any:
            *given, callback = args if len(args) > spec.arity else (*args, None)
            return self.runner.call(name, tuple(given), callback)

        return with_callback
    if spec.item is not None:
        return lambda self, *args: self.runner.stream(name, args)
    return lambda self, *args: self.runner.call(name, args)


def proxy(runner: RunnerProcess, ready: Ready) -> RunnerRuntime:
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


def kill_all() -> None:
    """End every runner at once (the server is going down on a signal)."""
    for runner in list(LIVE):
        runner.kill()
