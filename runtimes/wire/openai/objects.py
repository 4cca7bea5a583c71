"""OpenAI's other answers: embeddings (float or base64), images, models, list pages and
deletions, made from neutral results and read back where a remote runtime needs them."""

from __future__ import annotations

import base64
from typing import Any

import msgspec
import numpy as np
from msgspec import UNSET, UnsetType


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# -- embeddings -----------------------------------------------------------------------------


class Embedding(msgspec.Struct, kw_only=True):
    """One input's vector: a list of floats, or base64 of little-endian float32s."""

    object: str = "embedding"
    index: int
    embedding: list[float] | str


class EmbeddingUsage(msgspec.Struct, kw_only=True):
    prompt_tokens: int = 0
    total_tokens: int = 0


class EmbeddingList(msgspec.Struct, kw_only=True):
    object: str = "list"
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage | None = None


def embedding_list(
    model: str, vectors: np.ndarray, prompt_tokens: int, encoding: str = "float"
) -> EmbeddingList:
    """Vectors ([N, D]) in order, as floats or (`encoding` "base64") as base64 text."""
    return EmbeddingList(
        data=[
            Embedding(
                index=i,
                embedding=b64(v.astype("<f4").tobytes()) if encoding == "base64" else v.tolist(),
            )
            for i, v in enumerate(vectors)
        ],
        model=model,
        usage=EmbeddingUsage(prompt_tokens=prompt_tokens, total_tokens=prompt_tokens),
    )


def vectors(out: EmbeddingList) -> np.ndarray:
    """The vectors of an answer, float32 [N, D], in input order whatever order they came in."""
    rows = sorted(out.data, key=lambda d: d.index)
    return np.asarray(
        [
            np.frombuffer(base64.b64decode(r.embedding), "<f4")
            if isinstance(r.embedding, str)
            else r.embedding
            for r in rows
        ],
        dtype=np.float32,
    )


# -- images ---------------------------------------------------------------------------------


class Image(msgspec.Struct, kw_only=True):
    """An image as base64 PNG (`b64_json`), or where to fetch it (`url`)."""

    b64_json: str | UnsetType = UNSET
    url: str | UnsetType = UNSET


class ImagesResponse(msgspec.Struct, kw_only=True):
    """Images made; `seed` (an extension) lists each image's seed, so it can be made again."""

    created: int
    data: list[Image]
    seed: list[int] | UnsetType | None = UNSET


# -- models ---------------------------------------------------------------------------------


class Model(msgspec.Struct, kw_only=True):
    """OpenAI's model object; other servers may leave out all but the id."""

    id: str
    object: str = "model"
    created: int = 0
    owned_by: str = ""


class ModelList(msgspec.Struct, kw_only=True):
    object: str = "list"
    data: list[Model]


# -- lists and deletions --------------------------------------------------------------------


class ListPage(msgspec.Struct, kw_only=True):
    """A cursor page. OpenAI's spec and SDK types make first_id and last_id required strings,
    never null, so an empty page has empty ones."""

    object: str = "list"
    data: list[Any]
    first_id: str
    last_id: str
    has_more: bool


def list_page(data: list[dict[str, Any]], has_more: bool) -> ListPage:
    """A page of stored objects (each with an `id`), as the store gives them."""
    return ListPage(
        data=data,
        first_id=data[0]["id"] if data else "",
        last_id=data[-1]["id"] if data else "",
        has_more=has_more,
    )


class Deleted(msgspec.Struct, kw_only=True):
    """What deleting an object answers: `object` names the kind that was deleted."""

    id: str
    object: str
    deleted: bool = True
