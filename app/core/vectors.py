"""Embedding vectors as the protocols hand them out: cut to fewer dimensions, L2-normalised."""

from __future__ import annotations

import numpy as np
from localoip.app.core.errors import InvalidInput


def normalised(vectors: np.ndarray) -> np.ndarray:
    """Each row scaled to length 1 (a zero row stays zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1, norms)


def shortened(vectors: np.ndarray, dimensions: int | None, model: str) -> np.ndarray:
    """The first `dimensions` of each vector, normalised again (as OpenAI's text-embedding-3
    models shorten theirs); the vectors unchanged when no dimensions are asked for.
    InvalidInput (param "dimensions") for more dimensions than the model gives."""
    if dimensions is None:
        return vectors
    if dimensions > vectors.shape[1]:
        raise InvalidInput(
            f"dimensions is {dimensions} but model {model!r} gives {vectors.shape[1]}",
            "dimensions",
        )
    return normalised(vectors[:, :dimensions])
