"""The model list as Anthropic's clients read it: GET /anthropic/v1/models and /models/{id}, and
GET /v1/models when the request carries `anthropic-version` (the server hands `shared_answer`
to OpenAI's route, which owns that path)."""

from __future__ import annotations

from datetime import UTC, datetime

from litestar import Controller, Request, get
from localoip.app.core.errors import InvalidInput
from localoip.app.core.model_facts import STARTED, model_facts
from localoip.app.core.registry import ModelHandle, Registry
from localoip.app.http.bodies import JSONObject
from localoip.runtimes.wire.anthropic.messages import ModelInfo, ModelPage

CREATED = datetime.fromtimestamp(STARTED, UTC).isoformat().replace("+00:00", "Z")


def model_info(handle: ModelHandle) -> ModelInfo:
    """A configured model as Anthropic lists it: its name, the server's start as its creation
    time, and the context it has (None before it loads, when its options do not say)."""
    return ModelInfo(
        id=handle.name,
        display_name=handle.name,
        created_at=CREATED,
        max_input_tokens=model_facts(handle).context_length,
    )


def model_page(
    registry: Registry, after: str | None, before: str | None, limit: str | None
) -> ModelPage:
    """The models after `after_id` (or before `before_id`), `limit` of them (1-1000, 20 by
    default), in the order models.toml lists them."""
    names = list(registry.models)
    count = 20
    if limit is not None:
        count = int(limit) if limit.isdecimal() else 0  # "²" is a digit, and no int
        if not 1 <= count <= 1000:
            raise InvalidInput(f"limit must be an integer from 1 to 1000, not {limit!r}", "limit")
    for given in (after, before):
        if given is not None and given not in names:
            raise InvalidInput(
                f"no model {given!r} to page from", "after_id" if given == after else "before_id"
            )
    if before is not None:
        end = names.index(before)
        page = names[max(0, end - count) : end]
        more = end - count > 0
    else:
        start = names.index(after) + 1 if after is not None else 0
        page = names[start : start + count]
        more = start + count < len(names)
    return ModelPage(
        data=[model_info(registry.models[n]) for n in page],
        has_more=more,
        first_id=page[0] if page else None,
        last_id=page[-1] if page else None,
    )


def shared_answer(request: Request, registry: Registry, model_id: str | None) -> object:
    """The answer on a path Anthropic shares with OpenAI: the model page, or one model."""
    if model_id is not None:
        return model_info(registry.get(model_id))
    query = request.query_params
    return model_page(registry, query.get("after_id"), query.get("before_id"), query.get("limit"))


class ModelsController(Controller):
    @get("/models")
    async def list_anthropic_models(self, request: Request, registry: Registry) -> JSONObject:
        return shared_answer(request, registry, None)

    @get("/models/{model_id:str}")
    async def get_anthropic_model(
        self, request: Request, registry: Registry, model_id: str
    ) -> JSONObject:
        return shared_answer(request, registry, model_id)
