"""Why a runner ended, in words; when to start it again (exponential backoff, a crash limit);
and the runner status the model listings show."""

from __future__ import annotations

import signal
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from localoip.runtimes.llamacpp.build import REBUILD_COMMAND

MEANINGS = {
    signal.SIGILL: "illegal instruction: the CPU cannot run code this build was compiled for",
    signal.SIGSEGV: "segmentation fault: native code touched memory it does not own",
    signal.SIGBUS: "bus error: native code made a bad memory access",
    signal.SIGFPE: "arithmetic error in native code",
    signal.SIGABRT: "aborted: native code gave up (a failed assertion such as GGML_ASSERT)",
    signal.SIGKILL: "killed: by the kernel's out-of-memory killer, or by kill -9",
    signal.SIGTERM: "terminated by another process",
}
REBUILD = (
    "llama-cpp-python was built for instructions this CPU cannot run; rebuild it for this "
    f"machine with `{REBUILD_COMMAND}` (see README)"
)
CRASH_LIMIT = 5
CRASH_WINDOW = 600.0  # seconds
MAX_BACKOFF = 60.0


@dataclass(frozen=True, slots=True)
class RunnerStatus:
    """A local model's runner, as the repository index, /v1/models and the playground show it."""

    pid: int | None  # None while no runner is up
    restarts: int  # started again after a crash, since the server started
    last_crash: str | None  # the reason for the last crash, in words


def cause(returncode: int) -> str:
    """A short label: the signal's name, or the exit code."""
    if returncode < 0:
        try:
            return signal.Signals(-returncode).name
        except ValueError:
            return f"signal {-returncode}"
    return f"exit {returncode}"


def describe(returncode: int, last_lines: Iterable[str], during: str = "") -> str:
    """How the runner ended (`during` says when, e.g. "while loading"), and the last lines it
    wrote to stderr."""
    if returncode < 0:
        name = cause(returncode)
        meaning = MEANINGS.get(signal.Signals(-returncode)) if name.startswith("SIG") else None
        what = f"killed by {name}" + (f" ({meaning})" if meaning else "")
    else:
        what = f"exited with code {returncode}"
    what += f" {during}" if during else ""
    tail = [line.strip() for line in last_lines if line.strip()][-3:]
    return what + (f"; last output: {' | '.join(tail)}" if tail else "")


def advice(returncode: int) -> str | None:
    """What the user should do about a crash of this kind, when we know."""
    return REBUILD if returncode == -signal.SIGILL else None


class CrashHistory:
    """A model's runner crashes: the first restart waits `first` seconds (`[server]
    restart_delay`, 1 s by default), each further crash since the model was last loaded
    explicitly doubles the wait, up to 60 s; restarts stop after CRASH_LIMIT crashes in
    CRASH_WINDOW seconds, until the model is loaded explicitly again."""

    def __init__(self, first: float = 1.0) -> None:
        self.first = first  # seconds before the first restart
        self.recent: deque[float] = deque()
        self.streak = 0  # crashes since the last explicit load
        self.restarts = 0
        self.last: str | None = None  # the last crash's reason
        self.last_cause: str | None = None  # and its cause, as a short label

    def crashed(self, returncode: int, reason: str, now: float | None = None) -> float | None:
        """Record a crash; the seconds to wait before restarting, or None to stop trying."""
        now = time.monotonic() if now is None else now
        self.recent.append(now)
        while self.recent and now - self.recent[0] > CRASH_WINDOW:
            self.recent.popleft()
        self.last, self.last_cause = reason, cause(returncode)
        self.streak += 1
        if len(self.recent) >= CRASH_LIMIT:
            return None
        return min(MAX_BACKOFF, self.first * 2.0 ** (self.streak - 1))

    def forgive(self) -> None:
        """An explicit load starts the count again."""
        self.recent.clear()
        self.streak = 0
