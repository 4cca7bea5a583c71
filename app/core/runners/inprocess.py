"""A runner in the server's own process: the runtime loaded and driven by a thread of its own.

It implements the runner interface (runners/base.py) as the runner process does, so the
handle cannot tell them apart: calls run one at a time, item by item, on the thread that
loaded the runtime (llama.cpp crashes when two threads share a model), with the batching
engine stepped between. Answers reach the event loop from that thread directly. Nothing
isolates a crash: a native fault ends the server, so this is for tests and embedding, chosen
with `create_app(settings, runners="in-process")`.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future
from typing import Any

from localoip.app.core.config import ModelSpec
from localoip.app.core.errors import ModelNotReady
from localoip.app.core.runners.base import Crashed, LoadFailed, Runner, RunnerRuntime, proxy
from localoip.app.core.runners.driver import Driver, ready
from localoip.runtimes.loading import load_runtime

log = logging.getLogger("localoip")

_LOADING = threading.Lock()
"""One in-process load at a time. Loading patches process-wide state while it runs: accelerate's
init_empty_weights (a diffusers pipeline's load) makes torch create every new parameter on
the 'meta' device, so a sentence-transformers model loaded at the same time on another
thread failed with "Unsupported device type 'meta'". A runner process has its own torch."""


class InprocRunner(Runner):
    """One model's runtime in this process; loading starts at construction."""

    pid = None  # no process of its own

    def __init__(self, spec: ModelSpec, on_crash: Crashed) -> None:
        super().__init__(spec)
        self._driver: Driver | None = None
        self._ready: Future[RunnerRuntime] = Future()
        self._thread = threading.Thread(target=self._own, name=f"runner-{spec.name}", daemon=True)
        self._thread.start()

    def _own(self) -> None:
        """The driver's thread: load, serve until stopped, fail what is open, unload."""
        spec = self.spec
        try:
            with _LOADING:
                runtime = load_runtime(spec.runtime, spec.source, spec.options)
        except Exception as exc:
            self._ready.set_exception(LoadFailed(str(exc) or type(exc).__name__))
            return
        driver = self._driver = Driver(runtime)
        if self.stopping is None:
            self._ready.set_result(proxy(self, ready(runtime)))
            driver.serve()
        else:
            self._ready.set_exception(
                ModelNotReady(f"model {spec.name!r} {self.stopping} while it loaded")
            )
        self._close(ModelNotReady(f"model {spec.name!r} {self.stopping}"))
        try:
            runtime.unload()
        except Exception:
            log.exception("model %r: unloading failed", spec.name)

    def wait_ready(self) -> RunnerRuntime:
        """Block until the model is loaded: its proxy. Raises LoadFailed, or ModelNotReady
        when it was stopped while it loaded."""
        return self._ready.result()

    def stop(self, timeout: float = 1.0) -> None:
        """Stop serving, fail the calls still open, and unload the runtime (on its thread,
        which this waits for; `timeout` is for a process and does not apply)."""
        self.kill("was unloaded")
        self._thread.join()

    def kill(self, why: str = "was stopped: the server is shutting down") -> None:
        """Stop serving without waiting; during a load, the model unloads once it is in."""
        self.stopping = self.stopping or why
        if self._driver is not None:
            self._driver.stop()

    def _send(self, call_id: int, name: str, args: tuple[Any, ...]) -> None:
        """A call goes to the driver's thread; a batched generation goes to the engine from
        the caller's thread, as a runner process's reader thread hands it over."""
        driver = self._driver
        assert driver is not None  # start() only follows wait_ready()
        to = _Route(self, call_id)
        if name.endswith("_batched"):
            driver.batched(call_id, name, *args, to)
        else:
            driver.call(call_id, name, args, to)

    def _send_cancel(self, call_id: int) -> None:
        if self._driver is not None:
            self._driver.cancel(call_id)


class _Route:
    """The driver's Reply for one call: on to the reply the server gave start()."""

    def __init__(self, runner: InprocRunner, call_id: int) -> None:
        self.runner = runner
        self.call_id = call_id

    def item(self, value: Any) -> None:
        self.runner._item(self.call_id, value)

    def done(self, value: Any) -> None:
        self.runner._done(self.call_id, value)

    def failed(self, error: BaseException) -> None:
        self.runner._failed(self.call_id, error)
