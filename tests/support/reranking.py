"""Rerank test data: a query, documents of which one is about it, and the rerank route's scores
in document order."""

from __future__ import annotations

import httpx
import numpy as np

QUERY = "how do i bake bread?"
DOCUMENTS = [
    "knead the dough, let it rise, then bake the bread.",
    "the car engine needs new spark plugs.",
    "stock markets fell sharply today.",
    "bread, butter and jam.",
    "a short one.",
]


def rerank(http: httpx.Client, path: str = "/v1/rerank", **body: object) -> dict:
    """POST a rerank request; its 200 body."""
    response = http.post(path, json=body)
    assert response.status_code == 200, response.text
    return response.json()


def in_document_order(results: list[dict], n: int) -> np.ndarray:
    """The results' relevance scores, put back in the order of the documents."""
    scores = np.full(n, np.nan, dtype=np.float32)
    for result in results:
        scores[result["index"]] = result["relevance_score"]
    return scores
