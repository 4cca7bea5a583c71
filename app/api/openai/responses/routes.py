"""The Responses API routes: create (plain, streamed, background), retrieve, delete, cancel,
input items, input token counts and compaction."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import Any

import msgspec
from litestar import Controller, Request, delete, get, post
from litestar.response import Response as LitestarResponse
from litestar.response import ServerSentEventMessage
from localoip.app.api.openai.common import page, resolve
from localoip.app.api.openai.records import OpenAIStore
from localoip.app.api.openai.responses import compaction, inputs
from localoip.app.api.openai.responses.output import ItemBuilder, OutputBuilder, finished
from localoip.app.api.openai.responses.runs import (
    Run,
    Runs,
    kept,
    kept_conversation,
    store_new,
)
from localoip.app.api.openai.responses.sealer import Sealer
from localoip.app.core.errors import InvalidInput, NotFound
from localoip.app.core.image_urls import ImageFetcher
from localoip.app.core.models.handle import prompt_tokens
from localoip.app.core.registry import ModelHandle, Registry
from localoip.app.http.bodies import JSONObject, decode
from localoip.app.http.sse import EventStream, primed
from localoip.app.http.truncation import Watch, truncation_headers
from localoip.runtimes.capabilities import Capability, ChatRequest
from localoip.runtimes.folding import as_delta
from localoip.runtimes.wire.openai.objects import Deleted, list_page
from localoip.runtimes.wire.openai.responses import requests as rt
from localoip.runtimes.wire.openai.responses.events import Event, lifecycle, replay
from localoip.runtimes.wire.openai.responses.items import CompactionTriggerItem, Item
from localoip.runtimes.wire.openai.responses.objects import InputTokens, new_response


def event_stream(
    events: AsyncIterator[Event], stop: Run | None = None, headers: dict[str, str] | None = None
) -> EventStream:
    """Events as named SSE frames. A foreground run (`stop`) stops when its client leaves."""

    async def frames() -> AsyncIterator[ServerSentEventMessage]:
        try:
            async for event in events:
                data = msgspec.json.encode(event).decode()
                yield ServerSentEventMessage(data=data, event=event.type)
        finally:
            if stop is not None and not stop.done and stop.task is not None:
                stop.task.cancel()

    return EventStream(frames(), headers=headers)


async def _listed(events: list[Event]) -> AsyncIterator[Event]:
    for event in events:
        yield event


async def _context(store: OpenAIStore, previous_id: str | None) -> list[Item]:
    """The items a response continuing `previous_id` starts from."""
    if previous_id is None:
        return []
    found = await kept_conversation(store, previous_id)
    if found is None:
        raise InvalidInput(
            f"previous response {previous_id!r} not found: it was never stored, was deleted "
            "or has expired",
            "previous_response_id",
            "previous_response_not_found",
        )
    return inputs.context_of(*found)


async def _conversation(
    req: rt.ResponseInput | rt.CompactRequest,
    registry: Registry,
    store: OpenAIStore,
    sealer: Sealer,
    route_model: str | None,
    input_optional: bool = False,
) -> tuple[ModelHandle, list[Item]]:
    """The model a Responses request is for, and its whole input items. `input_optional`: a
    stored conversation alone will do."""
    handle = resolve(registry, req.model, route_model)
    handle.require(Capability.CHAT)
    context = await _context(store, req.previous_response_id)
    if req.input is None and input_optional and context:
        return handle, context
    return handle, context + inputs.input_items(req.input, context, sealer)


async def _prepared(
    req: rt.ResponseInput,
    registry: Registry,
    store: OpenAIStore,
    sealer: Sealer,
    route_model: str | None,
    image_fetcher: ImageFetcher,
) -> tuple[ModelHandle, list[Item], ChatRequest]:
    """The model a Responses request is for, its whole input items, and the chat they make
    (images named by URL fetched, or refused)."""
    inputs.refuse_unsupported(req)
    handle, items = await _conversation(req, registry, store, sealer, route_model)
    chat = await image_fetcher.fetched(inputs.chat_request(req, items, sealer))
    return handle, items, chat


def _missing(response_id: str) -> NotFound:
    return NotFound(
        f"no response {response_id!r}; only responses created with store: true are kept",
        "response_id",
    )


class ResponsesController(Controller):
    @post("/responses", status_code=200)
    async def create(
        self,
        request: Request,
        registry: Registry,
        store: OpenAIStore,
        runs: Runs,
        sealer: Sealer,
        route_model: str | None,
        image_fetcher: ImageFetcher,
    ) -> Any:
        req = decode(await request.body(), rt.CreateResponse)
        handle, items, chat = await _prepared(
            req, registry, store, sealer, route_model, image_fetcher
        )
        keep = req.store is not False
        builder: Callable[[], ItemBuilder] = OutputBuilder
        if inputs.compacts(items):
            # The trigger asks for this response to be a compaction; it is no part of the talk.
            items = items[:-1]
            chat = compaction.summary_request(chat.messages)
            builder = partial(compaction.SummaryBuilder, sealer)

        if req.background:
            if not keep and not req.stream:
                raise InvalidInput(
                    "a background response that is not stored could never be read; "
                    "set store to true, or stream it",
                    "store",
                )
            run = Run(new_response(req, handle.name, "queued"), keep)
            if keep:
                await store_new(store, run.response, items)
            run.emit(lifecycle("created", run.response))
            run.emit(lifecycle("queued", run.response))
            runs.start(
                run, lambda: handle.generate_stream(Capability.CHAT, chat), builder, detached=True
            )
            return event_stream(run.follow()) if req.stream else run.response

        if req.stream:
            # The first delta comes before the response starts, so early errors get a status.
            watch = Watch()
            deltas = await primed(watch.watched(handle.generate_stream(Capability.CHAT, chat)))
            run = Run(new_response(req, handle.name, "in_progress"), keep)
            if keep:
                await store_new(store, run.response, items)
            run.emit(lifecycle("created", run.response))
            run.emit(lifecycle("in_progress", run.response))
            runs.start(run, lambda: deltas, builder, detached=False)
            return event_stream(run.follow(), stop=run, headers=watch.headers)

        result = await handle.generate(Capability.CHAT, chat)
        out = builder()
        out.add(as_delta(result))
        out.finish()
        response = finished(new_response(req, handle.name, "in_progress"), out)
        if keep:
            await store_new(store, response, items)
        return LitestarResponse(response, headers=truncation_headers(result.truncated))

    @post("/responses/input_tokens", status_code=200)
    async def input_tokens(
        self,
        request: Request,
        registry: Registry,
        store: OpenAIStore,
        sealer: Sealer,
        route_model: str | None,
        image_fetcher: ImageFetcher,
    ) -> JSONObject:
        """The input's tokens as the model sees them: rendered by its chat template, with the
        instructions and tools. A model without a tokenizer here (a remote one) counts them by
        generating one token."""
        req = decode(await request.body(), rt.ResponseInput)
        handle, _, chat = await _prepared(req, registry, store, sealer, route_model, image_fetcher)
        return InputTokens(input_tokens=await prompt_tokens(handle, chat))

    @post("/responses/compact", status_code=200)
    async def compact(
        self,
        request: Request,
        registry: Registry,
        store: OpenAIStore,
        sealer: Sealer,
        route_model: str | None,
        image_fetcher: ImageFetcher,
    ) -> JSONObject:
        """The conversation (given, stored, or both) as its user messages and one compaction
        item: the model's summary, sealed. Nothing is stored."""
        req = decode(await request.body(), rt.CompactRequest)
        if req.input is None and req.previous_response_id is None:
            raise InvalidInput(
                "nothing to compact: give input, previous_response_id, or both", "input"
            )
        handle, items = await _conversation(
            req, registry, store, sealer, route_model, input_optional=True
        )
        items = [item for item in items if not isinstance(item, CompactionTriggerItem)]
        messages = inputs.chat_messages(req.instructions, items, sealer)
        chat = await image_fetcher.fetched(compaction.summary_request(messages))
        result = await handle.generate(Capability.CHAT, chat)
        out = compaction.SummaryBuilder(sealer)
        out.add(as_delta(result))
        out.finish()
        return compaction.compacted(items, out.output[0], out.usage)

    @get("/responses/{response_id:str}")
    async def retrieve(
        self,
        store: OpenAIStore,
        runs: Runs,
        response_id: str,
        stream: bool = False,
        starting_after: int = -1,
    ) -> Any:
        run = runs.live.get(response_id)
        if stream and run is not None:
            return event_stream(run.follow(starting_after))
        response = await kept(store, response_id)
        if response is None:
            raise _missing(response_id)
        if stream:  # it has finished: its events, told again
            return event_stream(_listed(replay(response)[starting_after + 1 :]))
        return response

    @delete("/responses/{response_id:str}", status_code=200)
    async def remove(self, store: OpenAIStore, runs: Runs, response_id: str) -> JSONObject:
        run = runs.live.get(response_id)
        if run is not None:
            await runs.cancel(run)
        if not await store.delete_response(response_id):
            raise _missing(response_id)
        return Deleted(id=response_id, object="response")

    @post("/responses/{response_id:str}/cancel", status_code=200)
    async def cancel(self, store: OpenAIStore, runs: Runs, response_id: str) -> JSONObject:
        run = runs.live.get(response_id)
        if run is not None:
            return await runs.cancel(run)
        response = await kept(store, response_id)
        if response is None:
            raise _missing(response_id)
        if not response.background:
            raise InvalidInput(
                f"response {response_id!r} has finished (status {response.status}); only "
                "responses created with background: true, or still streaming, can be cancelled",
                "response_id",
            )
        return response  # a finished background response: cancelling again changes nothing

    @get("/responses/{response_id:str}/input_items")
    async def input_items(
        self,
        store: OpenAIStore,
        response_id: str,
        after: str | None = None,
        limit: str | None = None,
        order: str | None = None,
    ) -> JSONObject:
        found = await store.response_items(response_id, page(after, limit, order, "desc"))
        if found is None:
            raise _missing(response_id)
        return list_page(*found)
