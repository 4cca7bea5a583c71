"""POST /rerank in the Jina/Cohere shape that vLLM and KServe serve."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
import numpy as np
from litestar import Controller, Request, post
from localoip.app.api.openai import translate
from localoip.app.api.openai.routes import resolve
from localoip.app.core.registry import Registry
from localoip.app.core.rerank import rerank


class RerankDocument(msgspec.Struct, kw_only=True):
    text: str


class RerankRequest(msgspec.Struct, kw_only=True):
    query: str
    documents: Annotated[list[str | RerankDocument], msgspec.Meta(min_length=1)]
    model: str | None = None
    top_n: Annotated[int, msgspec.Meta(ge=1)] | None = None  # None: every document
    return_documents: bool = True


class RerankController(Controller):
    @post("/rerank", status_code=200)
    async def rerank(
        self, request: Request, registry: Registry, route_model: str | None
    ) -> dict[str, Any]:
        req = translate.decode(await request.body(), RerankRequest)
        handle = resolve(registry, req.model, route_model)
        texts = [d if isinstance(d, str) else d.text for d in req.documents]
        scores = await rerank(handle, req.query, texts)
        order = np.argsort(-scores.values, kind="stable")[: req.top_n]
        return {
            "id": translate.new_id("rerank"),
            "model": handle.name,
            "usage": {"total_tokens": scores.tokens},
            "results": [
                {
                    "index": int(i),
                    "relevance_score": float(scores.values[i]),
                    **({"document": {"text": texts[i]}} if req.return_documents else {}),
                }
                for i in order
            ],
        }
