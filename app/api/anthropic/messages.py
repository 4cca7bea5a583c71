"""POST /messages: a reply, whole or streamed as Anthropic's events; POST /messages/count_tokens:
the prompt's tokens."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgspec
from litestar import Controller, Request, Response, post
from litestar.response import ServerSentEventMessage
from localoip.app.core.image_urls import ImageFetcher
from localoip.app.core.models.handle import prompt_tokens
from localoip.app.core.registry import ModelHandle, Registry
from localoip.app.http.bodies import JSONObject, decode
from localoip.app.http.errors import anthropic_body
from localoip.app.http.sse import EventStream, Frame, guarded, primed
from localoip.app.http.truncation import Watch, truncation_headers
from localoip.runtimes.capabilities import Capability, ChatRequest
from localoip.runtimes.folding import Fold
from localoip.runtimes.wire.anthropic.events import Event, MessageEvents, event_name
from localoip.runtimes.wire.anthropic.messages import TokenCount, message, new_id
from localoip.runtimes.wire.anthropic.requests import (
    CountTokensRequest,
    MessagesRequest,
    chat_request,
)


def _omits_thinking(req: CountTokensRequest) -> bool:
    return req.thinking is not None and req.thinking.display == "omitted"


class MessagesController(Controller):
    @post("/messages", status_code=200)
    async def create_message(
        self, request: Request, registry: Registry, image_fetcher: ImageFetcher
    ) -> Any:
        """The reply to a conversation; with `stream`, its events (errors before the first
        token get a status, later ones an `error` event)."""
        req = decode(await request.body(), MessagesRequest)
        handle = registry.get(req.model)
        chat = chat_request(req)
        handle.require(Capability.CHAT)
        chat = await image_fetcher.fetched(chat)
        show = not _omits_thinking(req)
        if req.stream:
            watch = Watch()
            events = await primed(_events(handle, chat, show, watch))
            frames = guarded(_frames(events), anthropic_body, error_event="error")
            return EventStream(frames, headers=watch.headers)
        result = await handle.generate(Capability.CHAT, chat)
        reply = message(handle.name, result, show_thinking=show)
        return Response(reply, headers=truncation_headers(result.truncated))

    @post("/messages/count_tokens", status_code=200)
    async def count_message_tokens(
        self, request: Request, registry: Registry, image_fetcher: ImageFetcher
    ) -> JSONObject:
        """The tokens of the prompt a message would be generated from, as its usage counts
        them (`input_tokens` plus `cache_read_input_tokens`)."""
        req = decode(await request.body(), CountTokensRequest)
        handle = registry.get(req.model)
        chat = chat_request(req)
        handle.require(Capability.CHAT)
        chat = await image_fetcher.fetched(chat)
        return TokenCount(input_tokens=await prompt_tokens(handle, chat))


async def _events(
    handle: ModelHandle, chat: ChatRequest, show: bool, watch: Watch
) -> AsyncIterator[Event]:
    """The reply's events: message_start goes with the model's first delta, so an error before
    it still gets a status (primed)."""
    writer = MessageEvents(new_id(), handle.name, show)
    fold = Fold()
    events = writer.start()
    async for delta in watch.watched(handle.generate_stream(Capability.CHAT, chat)):
        events += writer.add(fold.add(delta))
        for event in events:
            yield event
        events = []
    for event in [*events, *writer.end(fold.result())]:
        yield event


async def _frames(events: AsyncIterator[Event]) -> AsyncIterator[Frame]:
    """Each event as an SSE event named by its type."""
    async for event in events:
        yield ServerSentEventMessage(
            data=msgspec.json.encode(event).decode(), event=event_name(event)
        )
