"""Stored chat completions: keeping them (`store: true`), and the routes that list, read,
update and delete them."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, delete, get, post
from localoip.app.api.openai.common import page
from localoip.app.api.openai.records import OpenAIStore
from localoip.app.core.errors import InvalidInput, NotFound
from localoip.app.http.bodies import JSONObject, decode
from localoip.runtimes.wire.openai.chat import ChatCompletion
from localoip.runtimes.wire.openai.objects import Deleted, list_page
from localoip.runtimes.wire.openai.requests import ChatCompletionRequest, Message, Metadata


def _message(cid: str, index: int, message: Message) -> dict[str, Any]:
    """A request message as stored: with an id, and its text parts kept apart."""
    parts = None
    content = message.content
    if isinstance(content, list):
        parts = [msgspec.to_builtins(p) for p in content]
        content = "".join(p.text or "" for p in content)
    stored: dict[str, Any] = {
        "id": f"{cid}-{index}",
        "role": message.role,
        "content": content,
        "content_parts": parts,
    }
    if message.name is not None:
        stored["name"] = message.name
    if message.tool_calls:
        stored["tool_calls"] = msgspec.to_builtins(message.tool_calls)
    if message.tool_call_id is not None:
        stored["tool_call_id"] = message.tool_call_id
    return stored


async def keep(store: OpenAIStore, req: ChatCompletionRequest, completion: ChatCompletion) -> None:
    """OpenAIStore a completion with the request that made it and the request's messages."""
    request = {k: v for k, v in msgspec.to_builtins(req).items() if v is not None}
    messages = [_message(completion.id, i, m) for i, m in enumerate(req.messages)]
    await store.add_completion(
        msgspec.to_builtins(completion), request, messages, req.metadata or {}
    )


# -- routes ---------------------------------------------------------------------------------


def _metadata_filter(request: Request) -> dict[str, str]:
    """`metadata[key]=value` query parameters, as the SDK sends a metadata filter."""
    return {
        name[len("metadata[") : -1]: value
        for name, value in request.query_params.items()
        if name.startswith("metadata[") and name.endswith("]")
    }


class StoredCompletionsController(Controller):
    @get("/chat/completions")
    async def list_completions(
        self,
        request: Request,
        store: OpenAIStore,
        route_model: str | None,
        after: str | None = None,
        limit: str | None = None,
        order: str | None = None,
    ) -> JSONObject:
        model = request.query_params.get("model")  # on sub-routes, `model` is the URL's
        if route_model is not None and model is not None and model != route_model:
            raise InvalidInput(
                f"the query names model {model!r} but the URL is for {route_model!r}",
                "model",
                "model_mismatch",
            )
        found, more = await store.completions(
            model or route_model, _metadata_filter(request), page(after, limit, order, "asc")
        )
        return list_page(found, more)

    @get("/chat/completions/{completion_id:str}")
    async def get_completion(self, store: OpenAIStore, completion_id: str) -> JSONObject:
        completion = await store.completion(completion_id)
        if completion is None:
            raise _missing(completion_id)
        return completion

    @post("/chat/completions/{completion_id:str}", status_code=200)
    async def update_completion(
        self, request: Request, store: OpenAIStore, completion_id: str
    ) -> JSONObject:
        update = decode(await request.body(), MetadataUpdate)
        completion = await store.update_metadata(completion_id, update.metadata or {})
        if completion is None:
            raise _missing(completion_id)
        return completion

    @delete("/chat/completions/{completion_id:str}", status_code=200)
    async def delete_completion(self, store: OpenAIStore, completion_id: str) -> JSONObject:
        if not await store.delete_completion(completion_id):
            raise _missing(completion_id)
        return Deleted(id=completion_id, object="chat.completion.deleted")

    @get("/chat/completions/{completion_id:str}/messages")
    async def list_messages(
        self,
        store: OpenAIStore,
        completion_id: str,
        after: str | None = None,
        limit: str | None = None,
        order: str | None = None,
    ) -> JSONObject:
        found = await store.completion_messages(completion_id, page(after, limit, order, "asc"))
        if found is None:
            raise _missing(completion_id)
        messages, more = found
        # The schema of a listed message requires `refusal`; a request message never has one.
        return list_page([{"refusal": None} | m for m in messages], more)


class MetadataUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The one thing a stored completion lets you change."""

    metadata: Metadata | None


def _missing(completion_id: str) -> NotFound:
    return NotFound(
        f"no stored chat completion {completion_id!r}; only completions created with "
        "store: true are kept",
        "completion_id",
    )
