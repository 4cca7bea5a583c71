"""GET /models and /models/{id}: OpenAI's model objects, with what localoip knows of each."""

from __future__ import annotations

import time
from typing import Any

from litestar import Controller, get
from localoip.app.api.openai.common import JSONObject
from localoip.app.core.downloads import DownloadStatus, download_status
from localoip.app.core.model_facts import facts_fields
from localoip.app.core.registry import ModelHandle, Registry
from localoip.app.core.runners.crash import RunnerStatus
from localoip.runtimes.wire.openai.objects import Model, ModelList

STARTED = int(time.time())


class ModelCard(Model, kw_only=True):
    """A model as /v1/models lists it: OpenAI's fields, then localoip's (its runtime and
    capabilities, the facts of model_facts, its state, runner, download and parallel slots)."""

    runtime: str
    capabilities: list[str]
    context_length: int | None
    max_model_len: int | None
    max_context_length: int | None
    quantization: str | None
    file_size: int | None
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
    @get("/models")
    async def list_models(self, registry: Registry) -> JSONObject:
        return ModelList(data=[model_card(h) for h in registry.models.values()])

    @get("/models/{model_id:str}")
    async def get_model(self, registry: Registry, model_id: str) -> JSONObject:
        return model_card(registry.get(model_id))
