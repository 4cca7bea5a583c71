"""Supervision: a local model's runner process, started for each load, its crashes judged."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from localoip.app.core.config import ModelSpec
from localoip.app.core.downloads import Download, local_source
from localoip.app.core.metrics import Metrics
from localoip.app.core.models.turns import Turns
from localoip.app.core.runners.base import Crashed, LoadFailed, Runner, RunnerKind, RunnerRuntime
from localoip.app.core.runners.client import RunnerProcess
from localoip.app.core.runners.crash import CrashHistory, RunnerStatus, advice
from localoip.app.core.runners.inprocess import InprocRunner
from localoip.runtimes.capabilities import Runtime
from localoip.runtimes.catalogue import RUNTIMES
from localoip.runtimes.loading import load_runtime

log = logging.getLogger("localoip")

RUNNERS: dict[RunnerKind, Callable[[ModelSpec, Crashed], Runner]] = {
    "process": RunnerProcess,
    "in-process": InprocRunner,
}


class Supervisor:
    """Starts one model's runtime: a runner for a local model (a process of its own, or with
    `runners="in-process"` a thread in this one), an HTTP client in this process for a remote
    one. Keeps the crash history that paces restarts."""

    def __init__(
        self,
        spec: ModelSpec,
        metrics: Metrics,
        runners: RunnerKind = "process",
        restart_delay: float = 1.0,
    ) -> None:
        self.spec = spec
        self.metrics = metrics
        self.crashes = CrashHistory(restart_delay)
        self.local = RUNTIMES[spec.runtime].local
        self.runner = RUNNERS[runners]
        self._starting: Runner | None = None  # a runner that is loading the model
        self.download: Download | None = None  # its hf: source on its way (core/downloads.py)

    def pid(self, runtime: Runtime | None) -> int | None:
        """The pid of the runner process serving this model, while there is one."""
        if isinstance(runtime, RunnerRuntime):
            return runtime.pid
        return self._starting.pid if self._starting is not None else None

    def status(self, runtime: Runtime | None) -> RunnerStatus | None:
        """The runner's pid, restarts and last crash; None for a remote model."""
        if not self.local:
            return None
        return RunnerStatus(self.pid(runtime), self.crashes.restarts, self.crashes.last)

    async def open(self, turns: Turns, crashed: Crashed) -> Runtime:
        """A local model's runner, loaded; a remote model's client, loaded on the worker.

        Raises LoadCrashed when the runner dies while loading, RuntimeError with the runner's
        reason when the load fails, and whatever a remote runtime's load raises."""
        spec = self.spec
        if not self.local:
            return await turns.on_worker(
                lambda: load_runtime(spec.runtime, spec.source, spec.options)
            )
        loop = asyncio.get_running_loop()

        def died(runner: Runner, returncode: int, reason: str) -> None:
            loop.call_soon_threadsafe(crashed, runner, returncode, reason)

        local = await local_source(self)  # downloads an hf: source first, with progress
        # Started on the loop's thread: the runner's parent-death signal follows this thread.
        runner = self._starting = self.runner(local, died)
        try:
            return await turns.on_worker(runner.wait_ready)
        except LoadFailed as exc:
            raise RuntimeError(str(exc)) from None
        except BaseException:
            runner.kill("was unloaded")  # the worker, still waiting for it, reaps it
            raise
        finally:
            self._starting = None

    def judge(self, returncode: int, reason: str) -> tuple[str, float | None]:
        """Record a crash: the words for the model's reason, and the seconds until a restart
        (None: it crashed too often, and stays down until loaded again)."""
        delay = self.crashes.crashed(returncode, reason)
        self.metrics.runner_crash(self.spec.name, returncode)
        if delay is None:
            then = "it crashed 5 times in 10 minutes, so it stays unavailable until loaded again"
        else:
            then = f"restarting in {delay:g} s"
        log.error("model %r: runner %s; %s", self.spec.name, reason, then)
        hint = advice(returncode)
        if hint:
            log.error("model %r: %s", self.spec.name, hint)
        return f"{reason}; {then}", delay

    def restarting(self) -> None:
        self.crashes.restarts += 1
        self.metrics.runner_restart(self.spec.name, self.crashes.last_cause or "")
        log.info("model %r: restarting its runner", self.spec.name)
