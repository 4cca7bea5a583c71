"""POST /rerank in the Jina/Cohere shape that vLLM and KServe serve."""

from __future__ import annotations

import numpy as np
from litestar import Controller, Request, post
from localoip.app.api.openai.common import JSONObject, decode, resolve
from localoip.app.core.registry import Registry
from localoip.app.core.rerank import rerank
from localoip.runtimes.wire.openai.common import new_id
from localoip.runtimes.wire.openai.vllm import (
    RerankDocument,
    Reranked,
    RerankRequest,
    RerankResult,
    RerankUsage,
)


class RerankController(Controller):
    @post("/rerank", status_code=200)
    async def rerank(
        self, request: Request, registry: Registry, route_model: str | None
    ) -> JSONObject:
        req = decode(await request.body(), RerankRequest)
        handle = resolve(registry, req.model, route_model)
        texts = [d if isinstance(d, str) else d.text for d in req.documents]
        scores = await rerank(handle, req.query, texts)
        order = np.argsort(-scores.values, kind="stable")[: req.top_n]
        return Reranked(
            id=new_id("rerank"),
            model=handle.name,
            usage=RerankUsage(total_tokens=scores.tokens),
            results=[
                RerankResult(index=int(i), relevance_score=float(scores.values[i]))
                if not req.return_documents
                else RerankResult(
                    index=int(i),
                    relevance_score=float(scores.values[i]),
                    document=RerankDocument(text=texts[i]),
                )
                for i in order
            ],
        )
