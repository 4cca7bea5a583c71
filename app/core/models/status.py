"""What a model's handle says of it now, read from its parts: state, queue, runner, slots."""

from __future__ import annotations

from typing import Any

from localoip.app.core.config import ModelSpec
from localoip.app.core.downloads import Download
from localoip.app.core.models.lifecycle import Lifecycle
from localoip.app.core.models.supervisor import Supervisor
from localoip.app.core.models.turns import Turns
from localoip.app.core.runners.crash import CrashHistory, RunnerStatus
from localoip.app.core.state import ModelState
from localoip.runtimes.capabilities import Capability, Runtime


class ModelStatus:
    """The read side of ModelHandle (handle.py), which composes these parts."""

    spec: ModelSpec
    turns: Turns
    supervisor: Supervisor
    life: Lifecycle

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def state(self) -> ModelState:
        return self.life.state

    @state.setter
    def state(self, value: ModelState) -> None:
        self.life.state = value

    @property
    def reason(self) -> str:
        return self.life.reason

    @property
    def runtime(self) -> Runtime | None:
        return self.life.runtime

    @runtime.setter
    def runtime(self, value: Runtime | None) -> None:
        self.life.runtime = value

    @property
    def load_seconds(self) -> float | None:
        return self.life.load_seconds

    @property
    def wakes(self) -> bool:
        return self.life.wakes

    @property
    def download(self) -> Download | None:
        """Its `hf:` source on its way, while the server downloads it."""
        return self.supervisor.download

    @property
    def pending(self) -> int:
        return self.turns.pending

    @property
    def running(self) -> int:
        return self.turns.running

    @property
    def queued(self) -> int:
        return self.turns.queued

    @property
    def crashes(self) -> CrashHistory:
        return self.supervisor.crashes

    @property
    def expires(self) -> float | None:
        """When (Unix seconds) keep_alive unloads the model if no request comes; None: it
        stays loaded."""
        return self.life.idle.expires()

    @property
    def runner_pid(self) -> int | None:
        return self.supervisor.pid(self.runtime)

    @property
    def runner(self) -> RunnerStatus | None:
        return self.supervisor.status(self.runtime)

    @property
    def parallel(self) -> dict[str, Any] | None:
        """A loaded generation model's parallel slots and how they were sized (its model
        card's `parallel`); None for other models and before the load."""
        reason = getattr(self.runtime, "slots_reason", "")
        return {"slots": self.turns.slots(), "sized": reason} if reason else None

    @property
    def slots(self) -> str:
        """The same in words, "8 parallel slots (auto: 8 on a CPU, ...)"; "" when None."""
        parallel = self.parallel
        if parallel is None:
            return ""
        count = parallel["slots"]
        return f"{count} parallel slot{'s' if count != 1 else ''} ({parallel['sized']})"

    @property
    def capabilities(self) -> frozenset[Capability]:
        """The runtime's own (a remote OIP model's, once loaded, as its metadata offers them),
        and rerank for a model that embeds (by cosine, see core/rerank.py)."""
        own = getattr(self.runtime, "offers", None) or self.spec.options.capabilities()
        return own | {Capability.RERANK} if Capability.EMBED in own else own

    @property
    def servable(self) -> bool:
        """Ready now, or not loaded and loading on the next request."""
        return self.state is ModelState.READY or self.wakes
