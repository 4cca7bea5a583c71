"""Reranking for both protocols: a cross-encoder scores pairs; an embedding model, by cosine."""

from __future__ import annotations

import numpy as np
from localoip.app.core.errors import InvalidInput
from localoip.app.core.models.handle import ModelHandle
from localoip.runtimes.capabilities import Capability, Scores


async def rerank(handle: ModelHandle, query: str, documents: list[str]) -> Scores:
    """How relevant each document is to the query, in document order.

    A model whose runtime reranks (a cross-encoder) scores each (query, document) pair.
    Any model that embeds reranks too: the query and the documents are embedded together,
    through the model's embedding batcher, and scored by cosine similarity.
    """
    handle.require(Capability.RERANK)
    if not query:
        raise InvalidInput("query must not be empty", "query")
    if not documents:
        raise InvalidInput("documents must not be empty; give at least one", "documents")
    for i, document in enumerate(documents):
        if not document:
            raise InvalidInput("documents must not contain empty texts", f"documents[{i}]")
    if Capability.RERANK in handle.spec.options.capabilities():
        scores = await handle.call(Capability.RERANK, lambda rt: rt.rerank(query, documents))
        handle.metrics.tokens(handle.name, scores.tokens, 0)
        return scores
    embedded = await handle.embed([query, *documents])
    vectors = np.asarray(embedded.vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = vectors / np.where(norms == 0, 1, norms)
    cosine = np.clip(unit[1:] @ unit[0], -1.0, 1.0)  # rounding can overshoot by an ulp
    return Scores(values=cosine, tokens=embedded.prompt_tokens)
