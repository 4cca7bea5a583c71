"""A runner in a process of its own: the child process, its socket, its reader thread.

One reader thread per runner takes each frame off the socket and hands it to the call it
answers (runners/base.py); a runner that dies is noticed there, by the socket's end of file.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

import msgspec
from localoip.app.core.config import ModelSpec
from localoip.app.core.errors import ModelCrashed, ModelNotReady
from localoip.app.core.runners.base import (
    CallFailed,
    Crashed,
    LoadCrashed,
    LoadFailed,
    Runner,
    RunnerRuntime,
    proxy,
)
from localoip.app.core.runners.crash import describe
from localoip.app.core.runners.driver import Declined, Reply
from localoip.app.core.runners.wire import (
    METHODS,
    Call,
    Cancel,
    Connection,
    Done,
    Failed,
    Item,
    Load,
    Method,
    Ready,
    encode,
)
from localoip.runtimes.capabilities import InputError

STDERR_LINES = 20
LIVE: set[RunnerProcess] = set()
"""Every runner this server started and has not stopped, for a stop on a signal."""


class RunnerProcess(Runner):
    """One runner process: started at construction (on the event loop's thread, which the
    child's parent-death signal follows), loaded by wait_ready(), ended by stop()."""

    def __init__(self, spec: ModelSpec, on_crash: Crashed) -> None:
        super().__init__(spec)
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
        """Block until the model is loaded: its proxy; LoadFailed, or LoadCrashed if it died."""
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
            if isinstance(frame, Item):
                self._item(frame.id, frame.value)
            elif isinstance(frame, Done):
                self._done(frame.id, frame.value)
            elif isinstance(frame, Failed):
                self._failed(frame.id, _error(frame))
        returncode, reason = self._ended()
        if self.stopping:
            self._close(ModelNotReady(f"model {self.spec.name!r} {self.stopping}"))
        else:
            self._close(ModelCrashed(f"model {self.spec.name!r} crashed: {reason}"))
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

    def start(self, name: str, args: tuple[Any, ...], reply: Reply) -> Callable[[], None]:
        """See Runner.start; the frames' values are decoded as `name` gives them."""
        return super().start(name, args, _Decoding(reply, METHODS[name]))

    def _send(self, call_id: int, name: str, args: tuple[Any, ...]) -> None:
        with contextlib.suppress(OSError):  # the reader notices the end and fails this call
            self.conn.send(Call(call_id, name, encode(args)))

    def _send_cancel(self, call_id: int) -> None:
        with contextlib.suppress(OSError):
            self.conn.send(Cancel(call_id))


class _Decoding:
    """A call's Reply, given the raw values of its frames."""

    def __init__(self, reply: Reply, method: Method) -> None:
        self.reply = reply
        self.method = method

    def item(self, raw: msgspec.Raw) -> None:
        assert self.method.item is not None
        self.reply.item(self.method.item.decode(raw))

    def done(self, raw: msgspec.Raw) -> None:
        try:
            value = self.method.result.decode(raw)
        except Exception as exc:
            self.reply.failed(exc)
            return
        self.reply.done(value)

    def failed(self, error: BaseException) -> None:
        self.reply.failed(error)


def _error(frame: Failed) -> Exception:
    """The exception a Failed frame stands for."""
    if frame.kind == "input":
        return InputError(frame.message, frame.param, frame.code)
    if frame.kind == "declined":
        return Declined(frame.message)
    return CallFailed(frame.message)


def kill_all() -> None:
    """End every runner at once (the server is going down on a signal)."""
    for runner in list(LIVE):
        runner.kill()
