"""POST /embeddings: vectors as floats or base64, optionally cut to fewer dimensions."""

from __future__ import annotations

import numpy as np
from litestar import Controller, Request, post
from localoip.app.api.openai.common import resolve
from localoip.app.core.errors import InvalidInput
from localoip.app.core.registry import Registry
from localoip.app.core.vectors import shortened
from localoip.app.http.bodies import JSONObject, decode
from localoip.runtimes.wire.openai.objects import embedding_list
from localoip.runtimes.wire.openai.requests import EmbeddingRequest


class EmbeddingsController(Controller):
    @post("/embeddings", status_code=200)
    async def embeddings(
        self, request: Request, registry: Registry, route_model: str | None
    ) -> JSONObject:
        req = decode(await request.body(), EmbeddingRequest)
        handle = resolve(registry, req.model, route_model)
        texts = [req.input] if isinstance(req.input, str) else req.input
        for i, text in enumerate(texts):
            if not text:
                raise InvalidInput("input must not contain empty strings", f"input[{i}]")
        result = await handle.embed(texts)
        vectors = shortened(
            np.asarray(result.vectors, dtype=np.float32), req.dimensions, handle.name
        )
        return embedding_list(
            handle.name, vectors, result.prompt_tokens, req.encoding_format or "float"
        )
