"""The runner process, `localoip runner --model NAME`: loads one model and serves its calls.

Its main thread drives the model (runners/driver.py): llama.cpp crashes when two threads
share a model, and the main thread's OpenMP team is the fast one. A reader thread takes
frames off the socket: a call goes to the driver, a cancel stops its call at once, and a
batched generation goes straight to the engine. Answers go back as frames, from the thread
that has them. When the server goes away (end of file on the socket, or the parent-death
signal) the runner exits at once.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import sys
import threading
from typing import Any

import msgspec
from localoip.app.core.runners.driver import Cancelled, Declined, Driver, ready
from localoip.app.core.runners.wire import (
    METHODS,
    Call,
    Cancel,
    Connection,
    Done,
    Failed,
    Item,
    Load,
    encode,
)
from localoip.runtimes.capabilities import InputError, Runtime
from localoip.runtimes.catalogue import RUNTIMES
from localoip.runtimes.loading import load_runtime
from localoip.runtimes.sources.source import Source

PR_SET_PDEATHSIG = 1


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
    if isinstance(exc, Declined):
        return Failed(call_id, "declined", str(exc))
    return Failed(call_id, "error", f"{type(exc).__name__}: {exc}")


class Frames:
    """A call's Reply, sent back over the connection as frames."""

    def __init__(self, conn: Connection, call_id: int) -> None:
        self.conn = conn
        self.call_id = call_id

    def item(self, value: Any) -> None:
        self.conn.send(Item(self.call_id, encode(value)))

    def done(self, value: Any) -> None:
        self.conn.send(Done(self.call_id, encode(value)))

    def failed(self, error: BaseException) -> None:
        self.conn.send(failure(self.call_id, error))


class ServedRuntime:
    """One loaded runtime, served over a connection."""

    def __init__(self, conn: Connection, runtime: Runtime) -> None:
        self.conn = conn
        self.driver = Driver(runtime)

    def serve(self) -> None:
        self.conn.send(ready(self.driver.runtime))
        threading.Thread(target=self._read, name="runner-read", daemon=True).start()
        self.driver.serve()

    def _read(self) -> None:
        while (frame := self.conn.receive()) is not None:
            if isinstance(frame, Call):
                self._call(frame)
            elif isinstance(frame, Cancel):
                self.driver.cancel(frame.id)
        os._exit(0)  # the server closed the connection or is gone: nothing left to do

    def _call(self, call: Call) -> None:
        reply = Frames(self.conn, call.id)
        try:
            args = METHODS[call.method].args.decode(call.args)
        except Exception as exc:
            reply.failed(exc)
            return
        if call.method.endswith("_batched"):
            self.driver.batched(call.id, call.method, *args, reply)
        else:
            self.driver.call(call.id, call.method, args, reply)


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
    ServedRuntime(conn, load(conn)).serve()
