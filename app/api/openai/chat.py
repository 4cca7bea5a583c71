"""POST /chat/completions: whole, or streamed as chunks; kept when `store` is true."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import Any

from litestar import Controller, Request, post
from localoip.app.api.openai import stored
from localoip.app.api.openai.common import replied, resolve, sse
from localoip.app.api.openai.records import OpenAIStore
from localoip.app.core.image_urls import ImageFetcher
from localoip.app.core.registry import ModelHandle, Registry
from localoip.app.http.bodies import decode
from localoip.app.http.sse import primed
from localoip.app.http.truncation import Watch
from localoip.runtimes.capabilities import Capability, ChatRequest, TextResult
from localoip.runtimes.folding import Fold
from localoip.runtimes.wire.openai import chat as wire
from localoip.runtimes.wire.openai.common import new_id, streamed_usage
from localoip.runtimes.wire.openai.requests import ChatCompletionRequest, chat_request, per_choice
from msgspec import UNSET


class ChatController(Controller):
    @post("/chat/completions", status_code=200)
    async def chat_completions(
        self,
        request: Request,
        registry: Registry,
        store: OpenAIStore,
        route_model: str | None,
        image_fetcher: ImageFetcher,
    ) -> Any:
        req = decode(await request.body(), ChatCompletionRequest)
        handle = resolve(registry, req.model, route_model)
        chat = chat_request(req)
        handle.require(Capability.CHAT)
        chat = await image_fetcher.fetched(chat)
        n = req.n or 1
        if req.stream:
            include_usage = bool(req.stream_options and req.stream_options.include_usage)
            keep = partial(stored.keep, store, req) if req.store else None
            watch = Watch()
            frames = await primed(_chunks(handle, chat, n, include_usage, keep, watch))
            return sse(frames, watch.headers)
        results = await asyncio.gather(
            *(handle.generate(Capability.CHAT, per_choice(chat, i)) for i in range(n))
        )
        completion = wire.chat_completion(handle.name, results)
        if req.store:
            await stored.keep(store, req, completion)
        return replied(completion, results)


async def _chunks(
    handle: ModelHandle,
    chat: ChatRequest,
    n: int,
    include_usage: bool,
    keep: Callable[[wire.ChatCompletion], Awaitable[None]] | None,
    watch: Watch,
) -> AsyncIterator[wire.ChatChunk]:
    """The n choices' chunks, one choice after another; then the usage, if asked for. The
    whole completion goes to `keep` once the last choice has ended; `watch` sees the deltas
    (the prompt's truncation, for the headers)."""
    cid, created = new_id("chatcmpl"), int(time.time())
    chunk_usage = None if include_usage else UNSET
    results: list[TextResult] = []
    for index in range(n):
        fold = Fold()
        first, streamed = True, False
        deltas = watch.watched(handle.generate_stream(Capability.CHAT, per_choice(chat, index)))
        async for delta in deltas:
            fold.add(delta)
            choice = wire.chunk_choice(index, delta, first, streamed)
            yield wire.ChatChunk(
                id=cid, created=created, model=handle.name, choices=[choice], usage=chunk_usage
            )
            first, streamed = False, streamed or bool(delta.call_pieces)
        results.append(fold.result())
    if include_usage:
        yield wire.ChatChunk(
            id=cid, created=created, model=handle.name, choices=[], usage=streamed_usage(results)
        )
    if keep is not None:
        await keep(wire.chat_completion(handle.name, results, cid, created))
