"""GET /api/tags, POST /api/show, GET /api/ps and GET /api/version, and HEAD / (the liveness
check Ollama's own CLI makes): the configured models in Ollama's words."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib.metadata import version
from typing import Any

from litestar import Controller, Request, get, head, post
from localoip.app.api.ollama.common import (
    capabilities,
    details,
    digest,
    listed,
    resolve,
    shown_name,
)
from localoip.app.core.memory import resident_bytes
from localoip.app.core.model_facts import STARTED, model_facts
from localoip.app.core.registry import ModelHandle, Registry
from localoip.app.core.state import ModelState
from localoip.app.http.bodies import decode
from localoip.runtimes.wire.ollama.requests import Named
from localoip.runtimes.wire.ollama.responses import (
    ListModel,
    ListResponse,
    ProcessResponse,
    RunningModel,
    ShowResponse,
    VersionResponse,
    rfc3339,
)

OLLAMA_API = "0.12.6"
"""The Ollama release whose API (routes and fields, `think` levels included) these routes
follow, as /api/version says it; clients that check a version compare against Ollama's."""

MODIFIED = rfc3339(datetime.fromtimestamp(STARTED, UTC))
"""Every model's `modified_at`: when this server started, as every protocol's list dates it."""
FOREVER = "9999-12-31T23:59:59Z"
"""/api/ps's `expires_at` for a model that stays loaded (no keep_alive, or a negative one)."""
LAST = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()
"""The last time RFC 3339 writes: a keep_alive that ends later is FOREVER."""


def list_model(handle: ModelHandle) -> ListModel:
    facts = model_facts(handle)
    return ListModel(
        name=shown_name(handle.name),
        model=shown_name(handle.name),
        modified_at=MODIFIED,
        size=facts.file_size or 0,
        digest=digest(handle),
        details=details(handle, facts),
    )


def running_model(handle: ModelHandle) -> RunningModel:
    """A loaded model: its runner's resident memory as `size` (its files' size for a model
    in this process), and when keep_alive unloads it (the last request's, else its own) if
    no request comes."""
    facts = model_facts(handle)
    pid = handle.runner_pid
    when = handle.expires
    expires = FOREVER
    if when is not None and when < LAST:
        expires = rfc3339(datetime.fromtimestamp(when, UTC))
    return RunningModel(
        name=shown_name(handle.name),
        model=shown_name(handle.name),
        modified_at=MODIFIED,
        size=(resident_bytes(pid) if pid else None) or facts.file_size or 0,
        digest=digest(handle),
        details=details(handle, facts),
        expires_at=expires,
        size_vram=0,
        context_length=facts.context_length,
    )


def show(handle: ModelHandle) -> ShowResponse:
    """The model as /api/show gives it: what is known before it loads (its context from
    its options), and the rest (template, architecture, weights) once it has loaded."""
    facts = model_facts(handle)
    template = facts.chat_template or ""
    context = facts.context_length
    parameters = f"num_ctx {context}" if context else ""
    family = details(handle, facts).family
    info: dict[str, Any] = {"general.architecture": family}
    if facts.parameters:
        info["general.parameter_count"] = facts.parameters
    if context:  # the context in use: num_ctx cannot raise it (see docs/ollama.md)
        info[f"{family}.context_length"] = context
    modelfile = f"# localoip: model {handle.name!r} of models.toml\nFROM {handle.spec.source}\n"
    if template:
        modelfile += f'TEMPLATE """{template}"""\n'
    if parameters:
        modelfile += f"PARAMETER {parameters}\n"
    return ShowResponse(
        modelfile=modelfile,
        parameters=parameters,
        template=template,
        details=details(handle, facts),
        model_info=info,
        capabilities=capabilities(handle, facts),
        modified_at=MODIFIED,
    )


class ModelsController(Controller):
    @get("/api/tags")
    async def ollama_tags(self, registry: Registry) -> Any:
        """Every model that chats, completes or embeds, by the names clients show."""
        return ListResponse(models=[list_model(h) for h in listed(registry)])

    @post("/api/show", status_code=200)
    async def ollama_show(self, request: Request, registry: Registry) -> Any:
        req = decode(await request.body(), Named)
        return show(resolve(registry, req.named))

    @get("/api/ps")
    async def ollama_ps(self, registry: Registry) -> Any:
        """The models loaded now."""
        loaded = [
            h for h in listed(registry) if h.state is ModelState.READY and h.runtime is not None
        ]
        return ProcessResponse(models=[running_model(h) for h in loaded])

    @get("/api/version")
    async def ollama_version(self) -> Any:
        return VersionResponse(version=OLLAMA_API, localoip=version("localoip"))


@head("/", include_in_schema=False, media_type="text/plain")
async def ollama_alive() -> None:
    """200 with no body: Ollama's CLI checks a server with HEAD / before anything else."""
