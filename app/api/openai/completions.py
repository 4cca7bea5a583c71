"""POST /completions (legacy): one choice per prompt and n, whole or streamed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from litestar import Controller, Request, post
from localoip.app.api.openai.common import replied, resolve, sse
from localoip.app.core.registry import ModelHandle, Registry
from localoip.app.http.bodies import decode
from localoip.app.http.sse import primed
from localoip.app.http.truncation import Watch
from localoip.runtimes.capabilities import Capability, CompletionRequest, TextResult
from localoip.runtimes.folding import Fold
from localoip.runtimes.wire.openai import completions as wire
from localoip.runtimes.wire.openai import requests
from localoip.runtimes.wire.openai.common import new_id, streamed_usage
from msgspec import UNSET


class CompletionsController(Controller):
    @post("/completions", status_code=200)
    async def completions(
        self, request: Request, registry: Registry, route_model: str | None
    ) -> Any:
        req = decode(await request.body(), requests.CompletionRequest)
        handle = resolve(registry, req.model, route_model)
        choices = [
            requests.per_choice(r, i)
            for r in requests.completion_requests(req)
            for i in range(req.n or 1)
        ]
        handle.require(Capability.COMPLETION)
        if req.stream:
            include_usage = bool(req.stream_options and req.stream_options.include_usage)
            watch = Watch()
            frames = await primed(_chunks(handle, choices, include_usage, watch))
            return sse(frames, watch.headers)
        results = await asyncio.gather(
            *(handle.generate(Capability.COMPLETION, r) for r in choices)
        )
        return replied(wire.completion(handle.name, results), results)


async def _chunks(
    handle: ModelHandle, choices: list[CompletionRequest], include_usage: bool, watch: Watch
) -> AsyncIterator[wire.CompletionChunk]:
    """The choices' chunks, one choice after another; then the usage, if asked for. `watch`
    sees their deltas (the prompt's truncation, for the headers)."""
    cid, created = new_id("cmpl"), int(time.time())
    chunk_usage = None if include_usage else UNSET
    results: list[TextResult] = []
    for index, request in enumerate(choices):
        fold, offset = Fold(), 0
        deltas = watch.watched(handle.generate_stream(Capability.COMPLETION, request))
        async for delta in deltas:
            fold.add(delta)
            choice = wire.chunk_choice(index, delta, offset)
            yield wire.CompletionChunk(
                id=cid, created=created, model=handle.name, choices=[choice], usage=chunk_usage
            )
            offset += len(delta.text)
        results.append(fold.result())
    if include_usage:
        yield wire.CompletionChunk(
            id=cid, created=created, model=handle.name, choices=[], usage=streamed_usage(results)
        )
