"""The Models tab and the status bar: each model's state, live, and load/unload buttons."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from litestar import Controller, Response, get, post
from litestar_htmx import HTMXRequest, HTMXTemplate
from localoip.app.core.downloads import DownloadStatus, download_status
from localoip.app.core.errors import ModelNotReady
from localoip.app.core.model_facts import model_facts
from localoip.app.core.registry import ModelHandle, ModelState, Registry
from localoip.app.core.runners.crash import RunnerStatus
from localoip.app.playground import snippets
from localoip.app.playground.messages import STATE_WORDS
from localoip.runtimes.capabilities import Capability
from localoip.runtimes.facts import ModelFacts

QUICK = 0.5
"""Seconds an action may take and still answer with its outcome; longer ones answer at once."""


@dataclass(frozen=True, slots=True)
class ModelRow:
    name: str
    runtime: str
    source: str
    capabilities: list[str]
    state: str
    words: str
    reason: str
    load_seconds: float | None
    pending: str | None  # "loading" | "unloading" while the page's action waits for the model
    runner: RunnerStatus | None
    download: DownloadStatus | None  # its hf: source on its way, for a live bar
    facts: ModelFacts  # context, quantisation and size, as /v1/models gives them
    slots: str  # a generation model's parallel slots, and why so many


@dataclass(frozen=True, slots=True)
class Choice:
    """An option of a model picker."""

    name: str
    label: str
    selected: bool


class ModelActions:
    """Loads and unloads started from the page, run in the background so the page stays live."""

    def __init__(self) -> None:
        self.pending: dict[str, str] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, name: str, doing: str, action: Callable[[], Awaitable[None]]) -> None:
        """Start `action` unless one is running for this model; wait up to QUICK seconds."""
        if name in self.pending:
            return
        self.pending[name] = doing

        async def run() -> None:
            try:
                await action()
            except ModelNotReady:
                pass  # a failed load leaves the model UNAVAILABLE, and the table shows why
            finally:
                self.pending.pop(name, None)

        task = asyncio.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        await asyncio.wait({task}, timeout=QUICK)


def rows(registry: Registry, actions: ModelActions) -> list[ModelRow]:
    return [
        ModelRow(
            name=h.name,
            runtime=h.spec.runtime,
            source=str(h.spec.source),
            capabilities=sorted(h.capabilities),
            state=h.state.value,
            words=STATE_WORDS[h.state],
            reason=h.reason,
            load_seconds=h.load_seconds
            if h.state is ModelState.READY and h.name not in actions.pending
            else None,
            pending=actions.pending.get(h.name),
            runner=h.runner,
            download=download_status(h),
            facts=model_facts(h),
            slots=h.slots,
        )
        for h in registry.models.values()
    ]


def signature(table: list[ModelRow]) -> str:
    """A short fingerprint of every row: the page asks for news only when it changes."""
    return f"{zlib.crc32(repr(table).encode()):08x}"


def busy(table: list[ModelRow]) -> bool:
    return any(r.pending or r.state == ModelState.LOADING for r in table)


def choices(registry: Registry, capability: Capability, selected: str = "") -> list[Choice]:
    """The models that can do `capability`, choosing `selected`, else the first ready one."""
    able = [h for h in registry.models.values() if capability in h.capabilities]
    names = {h.name for h in able}
    if selected not in names:
        ready = [h.name for h in able if h.state is ModelState.READY]
        selected = (ready or [h.name for h in able] or [""])[0]
    return [Choice(h.name, label(h), h.name == selected) for h in able]


def label(handle: ModelHandle) -> str:
    if handle.state is ModelState.READY:
        return handle.name
    return f"{handle.name} ({STATE_WORDS[handle.state]})"


def table_response(registry: Registry, actions: ModelActions) -> HTMXTemplate:
    return HTMXTemplate(
        template_name="playground/models_table.html",
        context={"rows": rows(registry, actions)},
        re_target="#models-table",
        re_swap="outerHTML",
    )


class ModelsController(Controller):
    path = "/ui"

    @get("/status")
    async def status(
        self, registry: Registry, actions: ModelActions, since: str = ""
    ) -> Response[None] | HTMXTemplate:
        """The status bar, or 204 when nothing changed since the page's copy."""
        table = rows(registry, actions)
        if signature(table) == since:
            return Response(None, status_code=204)
        return HTMXTemplate(
            template_name="playground/status.html",
            context={"rows": table, "signature": signature(table), "busy": busy(table)},
            trigger_event="models-changed",
            after="settle",
        )

    @get("/models")
    async def table(self, registry: Registry, actions: ModelActions) -> HTMXTemplate:
        return table_response(registry, actions)

    @get("/models/options")
    async def options(
        self, registry: Registry, capability: Capability, model: str = ""
    ) -> HTMXTemplate:
        """A model picker's options, keeping its current choice."""
        return HTMXTemplate(
            template_name="playground/model_options.html",
            context={"choices": choices(registry, capability, model)},
        )

    @post("/models/{name:str}/load", status_code=200)
    async def load(self, registry: Registry, actions: ModelActions, name: str) -> HTMXTemplate:
        registry.get(name)
        await actions.start(name, "loading", lambda: registry.load(name))
        return table_response(registry, actions)

    @post("/models/{name:str}/unload", status_code=200)
    async def unload(self, registry: Registry, actions: ModelActions, name: str) -> HTMXTemplate:
        registry.get(name)
        await actions.start(name, "unloading", lambda: registry.unload(name))
        return table_response(registry, actions)

    @post("/models/code", status_code=200)
    async def code(
        self, request: HTMXRequest, registry: Registry, api_key_env: str | None
    ) -> HTMXTemplate:
        server = str(request.base_url).rstrip("/")
        name = next(iter(registry.models), "MODEL")
        return HTMXTemplate(
            template_name="playground/code.html",
            context={"what": "the models", "snippets": snippets.models(server, name, api_key_env)},
        )
