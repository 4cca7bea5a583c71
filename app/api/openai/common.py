"""What every OpenAI route shares: the model a request is for, SSE in OpenAI's shape, and list
query parameters (JSON bodies are app/http/bodies.py's, which every JSON protocol shares)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec
from litestar import Response
from localoip.app.api.openai.records import Page
from localoip.app.core.errors import InvalidInput
from localoip.app.core.registry import ModelHandle, Registry
from localoip.app.http.errors import openai_body
from localoip.app.http.sse import EventStream, guarded
from localoip.app.http.truncation import truncation_headers
from localoip.runtimes.capabilities import TextResult

ORDERS = ("asc", "desc")


def resolve(registry: Registry, body_model: str | None, route_model: str | None) -> ModelHandle:
    """The model a request is for: the URL's on sub-routes, which the body must agree with."""
    if route_model is not None:
        if body_model is not None and body_model != route_model:
            raise InvalidInput(
                f"the body names model {body_model!r} but the URL is for {route_model!r}",
                "model",
                "model_mismatch",
            )
        return registry.get(route_model)
    if not body_model:
        raise InvalidInput("model is required", "model")
    return registry.get(body_model)


def sse(
    frames: AsyncIterator[msgspec.Struct], headers: dict[str, str] | None = None
) -> EventStream:
    """OpenAI-style SSE: JSON frames, then `data: [DONE]`; errors as an {"error": ...} frame."""

    async def encoded() -> AsyncIterator[str]:
        async for frame in frames:
            yield msgspec.json.encode(frame).decode()
        yield "[DONE]"

    return EventStream(guarded(encoded(), openai_body), headers=headers)


def replied(body: msgspec.Struct, results: list[TextResult]) -> Response[msgspec.Struct]:
    """A whole reply, with the headers of a prompt cut to fit the context (the first cut of
    its choices')."""
    cut = next((r.truncated for r in results if r.truncated is not None), None)
    return Response(body, headers=truncation_headers(cut))


def page(after: str | None, limit: str | None, order: str | None, default_order: str) -> Page:
    """A list's query parameters, checked as OpenAI checks them."""
    count = 20
    if limit is not None:
        try:
            count = int(limit)
        except ValueError:
            count = 0
        if not 1 <= count <= 100:
            raise InvalidInput(f"limit must be an integer from 1 to 100, not {limit!r}", "limit")
    order = order or default_order
    if order not in ORDERS:
        raise InvalidInput(f"order must be 'asc' or 'desc', not {order!r}", "order")
    return Page(after or None, count, order)  # type: ignore[arg-type]
