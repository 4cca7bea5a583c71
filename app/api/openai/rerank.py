"""POST /rerank in the Jina/Cohere shape that vLLM and KServe serve."""

from __future__ import annotations

from typing import Annotated

import msgspec
import numpy as np
from litestar import Controller, Request, post
from localoip.app.api.openai.common import resolve
from localoip.app.core.registry import Registry
from localoip.app.core.rerank import rerank
from localoip.app.http.bodies import JSONObject, decode
from localoip.runtimes.wire.openai.common import new_id
from msgspec import UNSET, Meta, UnsetType


class RerankDocument(msgspec.Struct, kw_only=True):
    text: str


class RerankRequest(msgspec.Struct, kw_only=True):
    query: str
    documents: Annotated[list[str | RerankDocument], Meta(min_length=1)]
    model: str | None = None
    top_n: Annotated[int, Meta(ge=1)] | None = None  # None: every document
    return_documents: bool = True


class RerankResult(msgspec.Struct, kw_only=True):
    index: int
    relevance_score: float
    document: RerankDocument | UnsetType = UNSET  # unless return_documents is false


class RerankUsage(msgspec.Struct, kw_only=True):
    total_tokens: int


class Reranked(msgspec.Struct, kw_only=True):
    """The documents by relevance, most relevant first."""

    id: str
    model: str
    usage: RerankUsage
    results: list[RerankResult]


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
                RerankResult(
                    index=int(i),
                    relevance_score=float(scores.values[i]),
                    document=RerankDocument(text=texts[i]) if req.return_documents else UNSET,
                )
                for i in order
            ],
        )
