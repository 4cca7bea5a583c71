"""POST /api/embed (L2-normalised vectors, optionally fewer dimensions) and the older
/api/embeddings (one prompt, its vector as the model gives it). No input loads the model."""

from __future__ import annotations

from typing import Any

import numpy as np
from litestar import Controller, Request, post
from localoip.app.api.ollama.common import Clock, resolve
from localoip.app.api.ollama.replies import apply_keep_alive
from localoip.app.core.errors import InvalidInput
from localoip.app.core.registry import ModelHandle, Registry
from localoip.app.core.vectors import normalised, shortened
from localoip.app.http.bodies import decode
from localoip.runtimes.capabilities import Capability, Embeddings, TokenizerModel
from localoip.runtimes.wire.ollama.requests import EmbeddingsRequest, EmbedRequest, KeepAlive
from localoip.runtimes.wire.ollama.responses import EmbeddingsResponse, EmbedResponse


async def embedded(handle: ModelHandle, texts: list[str], keep_alive: KeepAlive) -> Embeddings:
    """The texts' vectors; with none the model is only loaded (or with keep_alive 0 unloaded)
    and no vector comes back. `keep_alive` says how long the model stays loaded after them."""
    if texts:
        handle.require(Capability.EMBED)
    unload = apply_keep_alive(handle, keep_alive)
    if not texts:
        await (handle.sleep() if unload else handle.loaded())
        return Embeddings(np.zeros((0, 0), np.float32), ())
    result = await handle.embed(texts)
    if unload:
        await handle.sleep()
    return result


async def refuse_past_context(handle: ModelHandle, texts: list[str]) -> None:
    """InvalidInput for the first text longer than the model's context, for `truncate:
    false` (Ollama's "input exceeds maximum context length"); a model without a tokenizer
    here (a remote one) is left to its own rule."""

    def too_long(runtime: object) -> tuple[int, int, int] | None:
        if not isinstance(runtime, TokenizerModel):
            return None
        limit = runtime.max_model_len()
        for i, text in enumerate(texts):
            if (count := len(runtime.tokenize(text, True))) > limit:
                return i, count, limit
        return None

    found = await handle.call(Capability.EMBED, too_long)
    if found is not None:
        i, count, limit = found
        raise InvalidInput(
            f"input[{i}] is {count} tokens, more than the model's context of {limit}: shorten "
            "it, or send truncate: true (the default) to have it cut",
            f"input[{i}]",
        )


class EmbedController(Controller):
    @post("/api/embed", status_code=200)
    async def ollama_embed(self, request: Request, registry: Registry) -> Any:
        req = decode(await request.body(), EmbedRequest)
        handle = resolve(registry, req.model)
        texts = [req.input] if isinstance(req.input, str) else req.input
        texts = [] if texts == [""] else texts
        for i, text in enumerate(texts):
            if not text:
                raise InvalidInput("input must not contain empty strings", f"input[{i}]")
        clock = Clock.of(handle)
        if texts and not req.truncate:
            await refuse_past_context(handle, texts)
        result = await embedded(handle, texts, req.keep_alive)
        vectors = result.vectors
        if texts:
            vectors = shortened(normalised(vectors), req.dimensions, handle.name)
        metrics = clock.metrics(handle, result.prompt_tokens, 0)
        return EmbedResponse(
            model=req.model,
            embeddings=vectors.tolist(),
            total_duration=metrics.total_duration,
            load_duration=metrics.load_duration,
            prompt_eval_count=metrics.prompt_eval_count,
        )

    @post("/api/embeddings", status_code=200)
    async def ollama_embeddings(self, request: Request, registry: Registry) -> Any:
        req = decode(await request.body(), EmbeddingsRequest)
        handle = resolve(registry, req.model)
        result = await embedded(handle, [req.prompt] if req.prompt else [], req.keep_alive)
        return EmbeddingsResponse(embedding=result.vectors[0].tolist() if req.prompt else [])
