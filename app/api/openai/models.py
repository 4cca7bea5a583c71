"""GET /models and /models/{id}: OpenAI's model objects, with what localoip knows of each; the
other protocols' lists on the paths they share with OpenAI (GET /v1/models)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from litestar import Controller, Request, get
from localoip.app.core.downloads import DownloadStatus, download_status
from localoip.app.core.model_facts import STARTED, facts_fields
from localoip.app.core.registry import ModelHandle, Registry
from localoip.app.core.runners.crash import RunnerStatus
from localoip.app.http.bodies import JSONObject
from localoip.app.http.errors import APP_HANDLERS, protocol_of
from localoip.runtimes.wire.openai.objects import Model, ModelList

SharedModels = dict[str, Callable[[Request, Registry, str | None], object]]
"""Other protocols' answers on these paths, by protocol (app/server.py wires them): a request
that speaks one (errors.protocol_of: Anthropic's SDK sends `anthropic-version` on GET
/v1/models) gets its list, or (with a model id) its model. The adapters never import each
other, so the server hands each answer over."""


class ModelCard(Model, kw_only=True):
    """A model as /v1/models lists it: OpenAI's fields, then localoip's (its runtime and
    capabilities, the facts of model_facts, its state, runner, download and parallel slots)."""

    runtime: str
    capabilities: list[str]
    context_length: int | None
    max_model_len: int | None
    max_context_length: int | None
    context_sized: str | None
    quantization: str | None
    file_size: int | None
    vision: bool
    state: str
    reason: str | None
    runner: RunnerStatus | None
    download: DownloadStatus | None
    parallel: dict[str, Any] | None


def model_card(handle: ModelHandle) -> ModelCard:
    return ModelCard(
        id=handle.name,
        created=STARTED,
        owned_by="localoip",
        runtime=handle.spec.runtime,
        capabilities=sorted(handle.capabilities),
        **facts_fields(handle),
        state=handle.state,
        reason=handle.reason or None,
        runner=handle.runner,
        download=download_status(handle),
        parallel=handle.parallel,
    )


class ModelsController(Controller):
    """The model list and cards; errors in the shape of the protocol the request speaks."""

    @get("/models", exception_handlers=APP_HANDLERS)
    async def list_models(
        self, request: Request, registry: Registry, shared_models: SharedModels
    ) -> JSONObject:
        other = shared_models.get(protocol_of(request.url.path, request.headers))
        if other is not None:
            return other(request, registry, None)
        return ModelList(data=[model_card(h) for h in registry.models.values()])

    @get("/models/{model_id:str}", exception_handlers=APP_HANDLERS)
    async def get_model(
        self, request: Request, registry: Registry, shared_models: SharedModels, model_id: str
    ) -> JSONObject:
        other = shared_models.get(protocol_of(request.url.path, request.headers))
        if other is not None:
            return other(request, registry, model_id)
        return model_card(registry.get(model_id))
