"""Lifecycle: load, unload, keep_alive's idle unload and wake, retries, restarts after a crash."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from localoip.app.core.config import ModelSpec
from localoip.app.core.errors import ModelCrashed, ModelNotReady
from localoip.app.core.memory import resident_bytes, trim_heap
from localoip.app.core.models.budget import DoesNotFit
from localoip.app.core.models.idle import Idle
from localoip.app.core.models.later import Later
from localoip.app.core.models.supervisor import Supervisor
from localoip.app.core.models.turns import Turns
from localoip.app.core.runners.base import LoadCrashed, Runner, RunnerRuntime
from localoip.app.core.state import CRASHED, IDLE, ModelState
from localoip.runtimes.capabilities import Runtime, UpstreamError

log = logging.getLogger("localoip")


class Lifecycle:
    """One model's state and its runtime while loaded.

    Every change holds the model's lock (from Turns), so no call runs while the runtime is
    swapped. Failures never raise: the model is UNAVAILABLE with the reason in words. A remote
    model whose upstream is down retries every `retry_seconds`; a runner that crashed restarts
    after the Supervisor's backoff; with `keep_alive` an idle model unloads and the next
    request loads it again (`wakes`).
    """

    def __init__(self, spec: ModelSpec, turns: Turns, supervisor: Supervisor) -> None:
        self.spec = spec
        # Called before each load with the lock held; may unload others, or raise DoesNotFit.
        # The registry sets it when [server] has a memory budget.
        self.make_room: Callable[[Lifecycle, bool], Awaitable[None]] = _any_room
        self.turns = turns
        self.supervisor = supervisor
        self.state = ModelState.UNLOADED
        self.reason = ""
        self.load_seconds: float | None = None
        self.runtime: Runtime | None = None
        self.last_rss: int | None = None  # the runner's resident bytes when it last unloaded
        self.wakes = False  # not loaded, and the next request loads it
        self._retry = Later()  # a remote model's retry, or a crashed runner's restart
        ready = lambda: self.state is ModelState.READY  # noqa: E731
        self.idle = Idle(spec, lambda: turns.pending, ready, self._sleep)  # keep_alive
        self._waking: asyncio.Task | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def crashed_out(self) -> bool:
        """Unavailable because the runner crashed (and not yet loaded again)."""
        return self.state is ModelState.UNAVAILABLE and self.reason.startswith(CRASHED)

    # -- load and unload ----------------------------------------------------------------------

    async def load(self, evict: bool = True) -> None:
        """(Re)load the model: READY, or UNAVAILABLE with the reason; never raises.

        Past the memory budget, idle models are unloaded first (with `evict`), and a model
        that still does not fit stays unloaded, loading on the next request, with the why."""
        async with self.turns.exclusive():
            self._retry.cancel()
            self.idle.cancel()
            self.supervisor.crashes.forgive()
            self.state, self.reason = ModelState.LOADING, ""
            await self.turns.on_worker(self._drop_runtime)
            try:
                await self.make_room(self, evict)
            except DoesNotFit as exc:
                self.state, self.reason, self.wakes = ModelState.UNLOADED, str(exc), True
                log.warning("model %r not loaded: %s", self.name, exc)
                return
            await self._start()
            self.wakes = False
        if self.turns.pending == 0:
            self.idle.schedule()

    async def unload(self, reason: str = "") -> None:
        """Unload; with a reason (say, IDLE) the next request loads it again."""
        self._retry.cancel()
        self.idle.cancel()
        async with self.turns.exclusive():
            await self._unloaded(reason)
        log.info("model %r unloaded%s", self.name, f" ({reason})" if reason else "")

    def unloaded_until_asked(self, reason: str) -> None:
        """Not loaded, and loading on the next request (on-demand loading)."""
        self.state, self.reason, self.wakes = ModelState.UNLOADED, reason, True

    async def _unloaded(self, reason: str) -> None:
        """Drop the runtime. Holds the lock."""
        await self.turns.on_worker(self._drop_runtime)
        self.state, self.reason = ModelState.UNLOADED, reason
        self.wakes = bool(reason)
        self.idle.forget()

    async def awake(self) -> Runtime:
        """The loaded runtime, loading it first if it waits for a request (`wakes`).

        Raises ModelCrashed or ModelNotReady (503) when there is none after that."""
        if self.wakes:
            if self._waking is None:
                self._waking = asyncio.create_task(self.load())
                self._waking.add_done_callback(lambda _: setattr(self, "_waking", None))
            await asyncio.shield(self._waking)
        if self.runtime is None:
            raise self.unavailable()
        return self.runtime

    def unavailable(self) -> ModelCrashed | ModelNotReady:
        """The error for a request this model cannot take now, with the reason."""
        if self.crashed_out:
            return ModelCrashed(f"model {self.name!r} is unavailable: {self.reason}", "model")
        why = f": {self.reason}" if self.reason else ""
        return ModelNotReady(f"model {self.name!r} is not ready ({self.state}{why})", "model")

    async def _start(self, retrying: bool = False) -> None:
        """Load the runtime: READY, or UNAVAILABLE with the reason. Holds the lock."""
        if not retrying:  # logged before the call: a native crash leaves this line last
            log.info(
                "loading model %r (%s) from %s", self.name, self.spec.runtime, self.spec.source
            )
        start = time.perf_counter()
        try:
            self.runtime = await self.supervisor.open(self.turns, self.crashed)
        except LoadCrashed as exc:
            self.crashed(None, exc.returncode, exc.reason)
            return
        except Exception as exc:
            reason = str(exc) or type(exc).__name__
            if not retrying or reason != self.reason:  # a retry logs only news
                log.warning(
                    "model %r (%s) unavailable after %.2f s: %s",
                    self.name,
                    self.spec.runtime,
                    time.perf_counter() - start,
                    reason,
                )
            self.state, self.reason = ModelState.UNAVAILABLE, reason
            self._schedule_retry()
            return
        self.load_seconds = time.perf_counter() - start
        self.state, self.reason = ModelState.READY, ""
        _log_ready(self)

    def _drop_runtime(self) -> None:
        """Unload the runtime (a runner ends) and give free heap back to the OS. A runtime's
        unload frees its own memory (a runner process's goes with the process), so no full
        garbage collection here: in the server it held the GIL for 0.1 s or more, every
        stream waiting, and freed nothing."""
        if self.runtime is not None:
            pid = self.supervisor.pid(self.runtime)
            self.last_rss = (resident_bytes(pid) if pid else None) or self.last_rss
            self.runtime.unload()
            self.runtime = None
            trim_heap()

    # -- keep_alive ---------------------------------------------------------------------------

    async def _sleep(self) -> None:
        seconds = self.idle.seconds()
        async with self.turns.exclusive():
            if self.turns.pending or self.state is not ModelState.READY:
                return
            await self._unloaded(IDLE)
        log.info("model %r unloaded after %gs idle", self.name, seconds)

    # -- remote retries -----------------------------------------------------------------------

    def _schedule_retry(self) -> None:
        """Remote models whose upstream is down retry every `options.retry_seconds` on their own.

        A retry keeps the model UNAVAILABLE until it succeeds, so readiness never flaps."""
        seconds = getattr(self.spec.options, "retry_seconds", 0)
        if seconds:
            self._retry.schedule(seconds, self._retry_load)

    async def _retry_load(self) -> None:
        async with self.turns.exclusive():
            if self.state is ModelState.UNAVAILABLE:
                await self.turns.on_worker(self._drop_runtime)
                await self._start(retrying=True)

    def upstream_lost(self, exc: UpstreamError) -> None:
        """A remote model whose upstream stopped answering is UNAVAILABLE until it returns."""
        if exc.code == "upstream_unreachable" and self.state is ModelState.READY:
            self.state, self.reason = ModelState.UNAVAILABLE, str(exc)
            log.warning("model %r unavailable: %s", self.name, exc)
            self._schedule_retry()

    # -- crashes ------------------------------------------------------------------------------

    def crashed(self, runner: Runner | None, returncode: int, reason: str) -> None:
        """The runner died: UNAVAILABLE with the reason, and a restart after the backoff,
        until too many crashes in a row."""
        if runner is not None:
            if not isinstance(self.runtime, RunnerRuntime) or self.runtime.runner is not runner:
                return  # an old runner's news
            self.runtime = None
        words, delay = self.supervisor.judge(returncode, reason)
        self.state, self.reason = ModelState.UNAVAILABLE, f"{CRASHED}: {words}"
        if delay is not None:
            self._retry.schedule(delay, self._restart)

    async def _restart(self) -> None:
        async with self.turns.exclusive():
            if self.state is ModelState.UNAVAILABLE and self.runtime is None:
                self.supervisor.restarting()
                self.state = ModelState.LOADING
                await self._start(retrying=True)


def _log_ready(life: Lifecycle) -> None:
    slots = life.turns.slots()
    log.info(
        "model %r (%s) ready in %.2f s from %s%s",
        life.name,
        life.spec.runtime,
        life.load_seconds,
        life.spec.source,
        f"; continuous batching over {slots} slots ({getattr(life.runtime, 'slots_reason', '')})"
        if slots > 1
        else "",
    )


async def _any_room(_life: Lifecycle, _evict: bool) -> None:
    """No memory budget: every model fits."""
