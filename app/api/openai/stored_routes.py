"""Stored chat completions: keeping them (`store: true`), and the routes that list, read,
update and delete them. Also the list pages the Responses routes share."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgspec
from litestar import Controller, Request, delete, get, post
from localoip.app.api.openai import translate
from localoip.app.core.errors import InvalidInput, NotFound
from localoip.app.core.store import Page, Store
from localoip.runtimes.wire import openai_requests as types

ORDERS = ("asc", "desc")


def page(after: str | None, limit: str | None, order: str | None, default_order: str) -> Page:
    """A list's query parameters, checked as OpenAI checks them."""
    count = 20
    if limit is not None:
        try:
            count = int(limit)
        except ValueError:
            count = 0
        if not 1 <= count <= 100:
            raise InvalidInput(f"limit must be an integer from 1 to 100, not {limit!r}", "limit")
    order = order or default_order
    if order not in ORDERS:
        raise InvalidInput(f"order must be 'asc' or 'desc', not {order!r}", "order")
    return Page(after or None, count, order)  # type: ignore[arg-type]


def list_object(data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    """A cursor page. OpenAI's spec and SDK types make first_id and last_id required strings,
    never null, so an empty page has empty ones."""
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else "",
        "last_id": data[-1]["id"] if data else "",
        "has_more": has_more,
    }


# -- keeping a completion -------------------------------------------------------------------


def _message(cid: str, index: int, message: types.Message) -> dict[str, Any]:
    """A request message as stored: with an id, and its text parts kept apart."""
    parts = None
    content = message.content
    if isinstance(content, list):
        parts = [msgspec.to_builtins(p) for p in content]
        content = "".join(p.text or "" for p in message.content)
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


async def keep(store: Store, req: types.ChatCompletionRequest, completion: dict[str, Any]) -> None:
    """Store a completion with the request that made it and the request's messages."""
    request = {k: v for k, v in msgspec.to_builtins(req).items() if v is not None}
    cid = completion["id"]
    messages = [_message(cid, i, m) for i, m in enumerate(req.messages)]
    await store.add_completion(completion, request, messages, req.metadata or {})


class _Choice:
    """One streamed choice, put back together."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.calls: list[dict[str, Any]] = []
        self.logprobs: list[Any] | None = None
        self.finish_reason: str | None = None

    def add(self, choice: dict[str, Any]) -> None:
        delta = choice["delta"]
        self.text.append(delta.get("content") or "")
        for call in delta.get("tool_calls", ()):  # a call's first delta has its id and name
            function = call["function"]
            if call["index"] == len(self.calls):
                name = function.get("name")
                self.calls.append(
                    {
                        "id": call["id"],
                        "type": "function",
                        "function": {"name": name, "arguments": ""},
                    }
                )
            self.calls[call["index"]]["function"]["arguments"] += function.get("arguments") or ""
        if choice["logprobs"] is not None:
            self.logprobs = (self.logprobs or []) + choice["logprobs"]["content"]
        self.finish_reason = choice["finish_reason"] or self.finish_reason

    def whole(self, index: int) -> dict[str, Any]:
        text = "".join(self.text)
        message: dict[str, Any] = {
            "role": "assistant",
            "content": None if self.calls and not text else text,
            "refusal": None,
        }
        if self.calls:
            message["tool_calls"] = self.calls
        logprobs = None if self.logprobs is None else {"content": self.logprobs, "refusal": None}
        return {
            "index": index,
            "message": message,
            "logprobs": logprobs,
            "finish_reason": self.finish_reason,
        }


async def keeping(
    store: Store,
    req: types.ChatCompletionRequest,
    chunks: AsyncIterator[dict[str, Any]],
    include_usage: bool,
) -> AsyncIterator[dict[str, Any]]:
    """Pass a stream's chunks on, and store the whole completion once it has ended.

    `chunks` must carry usage; it reaches the client only if the client asked for it.
    """
    choices: dict[int, _Choice] = {}
    first: dict[str, Any] | None = None
    usage = None
    async for chunk in chunks:
        first = first or chunk
        for choice in chunk["choices"]:
            choices.setdefault(choice["index"], _Choice()).add(choice)
        if chunk.get("usage") is not None:
            usage = chunk["usage"]
            if not include_usage:
                continue
        if not include_usage:
            chunk.pop("usage", None)
        yield chunk
    if first is None:
        return
    completion = {
        "id": first["id"],
        "object": "chat.completion",
        "created": first["created"],
        "model": first["model"],
        "choices": [choices[i].whole(i) for i in sorted(choices)],
        "usage": usage,
    }
    await keep(store, req, completion)


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
        store: Store,
        route_model: str | None,
        after: str | None = None,
        limit: str | None = None,
        order: str | None = None,
    ) -> dict[str, Any]:
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
        return list_object(found, more)

    @get("/chat/completions/{completion_id:str}")
    async def get_completion(self, store: Store, completion_id: str) -> dict[str, Any]:
        completion = await store.completion(completion_id)
        if completion is None:
            raise _missing(completion_id)
        return completion

    @post("/chat/completions/{completion_id:str}", status_code=200)
    async def update_completion(
        self, request: Request, store: Store, completion_id: str
    ) -> dict[str, Any]:
        update = translate.decode(await request.body(), MetadataUpdate)
        completion = await store.update_metadata(completion_id, update.metadata or {})
        if completion is None:
            raise _missing(completion_id)
        return completion

    @delete("/chat/completions/{completion_id:str}", status_code=200)
    async def delete_completion(self, store: Store, completion_id: str) -> dict[str, Any]:
        if not await store.delete_completion(completion_id):
            raise _missing(completion_id)
        return {"object": "chat.completion.deleted", "id": completion_id, "deleted": True}

    @get("/chat/completions/{completion_id:str}/messages")
    async def list_messages(
        self,
        store: Store,
        completion_id: str,
        after: str | None = None,
        limit: str | None = None,
        order: str | None = None,
    ) -> dict[str, Any]:
        found = await store.completion_messages(completion_id, page(after, limit, order, "asc"))
        if found is None:
            raise _missing(completion_id)
        messages, more = found
        # The schema of a listed message requires `refusal`; a request message never has one.
        return list_object([{"refusal": None} | m for m in messages], more)


class MetadataUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The one thing a stored completion lets you change."""

    metadata: types.Metadata | None


def _missing(completion_id: str) -> NotFound:
    return NotFound(
        f"no stored chat completion {completion_id!r}; only completions created with "
        "store: true are kept",
        "completion_id",
    )
