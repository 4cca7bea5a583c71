"""The runner process, `localoip runner --model NAME`: loads one model and serves its calls.

The main thread owns the model and runs calls one at a time, in order: llama.cpp crashes
when two threads share a model, and the main thread's OpenMP team is the fast one. A
reader thread takes frames off the socket: calls go to the main thread's queue, cancels
set their call's flag at once, and a batching engine queues its generations directly. The
main thread also drives that engine: while it has work, each turn of the loop advances the
call in progress by one item (a streamed token) and the engine by one decode step, so
neither waits for the other to finish. When the server goes away (end of file on the
socket, or the parent-death signal) the runner exits at once.
"""

from __future__ import annotations

import ctypes
import os
import queue
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import msgspec
from localoip.app.core.runners.wire import (
    METHODS,
    PROTOCOLS,
    Call,
    Cancel,
    Connection,
    Done,
    Failed,
    Item,
    Load,
    Ready,
    encode,
)
from localoip.runtimes.capabilities import InputError, Runtime, TextDelta
from localoip.runtimes.catalogue import RUNTIMES
from localoip.runtimes.loading import load_runtime
from localoip.runtimes.sources.source import Source

PR_SET_PDEATHSIG = 1


class Cancelled(Exception):
    """The server cancelled the call (its client went away)."""


def die_with_parent(parent: int) -> None:
    """Ask Linux to SIGKILL this process when the server dies, even by SIGKILL."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the server died before the request above took hold
        os._exit(0)


def failure(call_id: int, exc: BaseException) -> Failed:
    if isinstance(exc, InputError):
        return Failed(call_id, "input", str(exc), exc.param, exc.code)
    if isinstance(exc, Cancelled):
        return Failed(call_id, "cancelled", "cancelled")
    return Failed(call_id, "error", f"{type(exc).__name__}: {exc}")


class Runner:
    """One loaded runtime, served over a connection."""

    def __init__(self, conn: Connection, runtime: Runtime) -> None:
        self.conn = conn
        self.runtime = runtime
        self.jobs: queue.SimpleQueue[Call | None] = queue.SimpleQueue()  # None: engine work
        self.cancels: dict[int, Callable[[], None]] = {}
        self.flags: dict[int, threading.Event] = {}

    def serve(self) -> None:
        protocols = [p.__name__ for p in PROTOCOLS if isinstance(self.runtime, p)]
        slots = getattr(self.runtime, "slots", 1)
        reason = getattr(self.runtime, "slots_reason", "")
        self.conn.send(Ready(protocols, slots, reason, self.runtime.facts()))
        engine = getattr(self.runtime, "engine", None)
        if engine is not None:
            engine.adopt(lambda: self.jobs.put(None))
        threading.Thread(target=self._read, name="runner-read", daemon=True).start()
        current: Iterator[None] | None = None  # the call in progress, one item per turn
        while True:
            busy = engine is not None and engine.busy
            if current is None:
                try:
                    call = self.jobs.get(block=not busy)
                except queue.Empty:
                    call = None
                if call is not None:
                    current = self._run(call)
            if current is not None and next(current, StopIteration) is StopIteration:
                current = None
            if busy:
                engine.step()

    # -- the reader thread ----------------------------------------------------------------

    def _read(self) -> None:
        while (frame := self.conn.receive()) is not None:
            if isinstance(frame, Call):
                if frame.method.endswith("_batched"):
                    self._batched(frame)
                else:
                    self._queue(frame)
            elif isinstance(frame, Cancel):
                cancel = self.cancels.get(frame.id)
                if cancel is not None:
                    cancel()
        os._exit(0)  # the server closed the connection or is gone: nothing left to do

    def _queue(self, call: Call) -> None:
        flag = threading.Event()
        self.flags[call.id] = flag
        self.cancels[call.id] = flag.set
        self.jobs.put(call)

    def _batched(self, call: Call) -> None:
        """Hand a generation to the batching engine; one it declines runs as a stream."""
        (request,) = METHODS[call.method].args.decode(call.args)
        call_id = call.id

        def emit(item: TextDelta | BaseException | None) -> None:
            if item is None:
                self.cancels.pop(call_id, None)
                self.conn.send(Done(call_id, encode(None)))
            elif isinstance(item, BaseException):
                self.cancels.pop(call_id, None)
                self.conn.send(failure(call_id, item))
            else:
                self.conn.send(Item(call_id, encode(item)))

        try:
            cancel = getattr(self.runtime, call.method)(request, emit)
        except Exception as exc:
            self.conn.send(failure(call_id, exc))
            return
        if cancel is None:
            stream = call.method.replace("_batched", "_stream")
            self._queue(Call(call_id, stream, call.args))
        else:
            self.cancels[call_id] = cancel

    # -- the main thread ------------------------------------------------------------------

    def _run(self, call: Call) -> Iterator[None]:
        """Answer a call, pausing after each item it sends."""
        flag = self.flags[call.id]
        try:
            if flag.is_set():
                raise Cancelled
            for frame in self._answer(call, flag):
                self.conn.send(frame)
                yield
        except Exception as exc:
            self.conn.send(failure(call.id, exc))
        finally:
            self.flags.pop(call.id, None)
            self.cancels.pop(call.id, None)

    def _answer(self, call: Call, flag: threading.Event) -> Iterator[Item | Done]:
        """The frames that answer a call: its items, then its Done."""
        method = METHODS[call.method]
        args = method.args.decode(call.args)
        runtime: Any = self.runtime
        if method.callback:  # an image's steps: reported, and the place to stop

            def on_step(step: int, total: int) -> None:
                if flag.is_set():
                    raise Cancelled
                self.conn.send(Item(call.id, encode((step, total))))

            yield Done(call.id, encode(getattr(runtime, call.method)(*args, on_step)))
        elif method.item is not None:
            for item in self._walk(getattr(runtime, call.method)(*args), flag):
                yield Item(call.id, encode(item))
            yield Done(call.id, encode(None))
        else:
            yield Done(call.id, encode(getattr(runtime, call.method)(*args)))

    @staticmethod
    def _walk(items: Iterator[Any], flag: threading.Event) -> Iterator[Any]:
        try:
            for item in items:
                if flag.is_set():
                    raise Cancelled
                yield item
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()


def load(conn: Connection) -> Runtime:
    """Read the Load frame and load that runtime; a failure is reported, then the runner ends."""
    frame = conn.receive()
    if not isinstance(frame, Load):
        os._exit(2)
    try:
        options = msgspec.msgpack.decode(frame.options, type=RUNTIMES[frame.runtime].options)
        runtime = load_runtime(frame.runtime, Source(frame.source_kind, frame.source), options)
    except Exception as exc:
        conn.send(Failed(0, "error", str(exc) or type(exc).__name__))
        conn.close()
        os._exit(0)
    return runtime


def run(model: str, fd: int, parent: int) -> None:
    """The runner's whole life; `model` names it on its command line and in its errors."""
    die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C reaches the group; the server stops us
    conn = Connection(socket.socket(fileno=fd))
    Runner(conn, load(conn)).serve()
