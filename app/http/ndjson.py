"""NDJSON streams (Ollama's): one JSON object a line, flushed as each is made; an error after
the first line is a last line in the protocol's error shape (before it, a status: see
sse.primed)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec
from litestar.response import Stream
from localoip.app.core.errors import Problem
from localoip.app.http.sse import guarded

NDJSON = "application/x-ndjson"


class LineStream(Stream):
    """A Stream that stays `application/x-ndjson` from handlers that can also answer JSON
    (Litestar otherwise applies such a handler's default media type)."""

    def to_asgi_response(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["media_type"] = NDJSON
        return super().to_asgi_response(*args, **kwargs)


def ndjson(
    frames: AsyncIterator[msgspec.Struct],
    error_body: Callable[[Problem], dict],
    headers: dict[str, str] | None = None,
) -> Stream:
    """`frames` as NDJSON lines; an exception is sent as one last line of `error_body`."""

    async def encoded() -> AsyncIterator[str]:
        async for frame in frames:
            yield msgspec.json.encode(frame).decode()

    async def lines() -> AsyncIterator[str]:
        async for line in guarded(encoded(), error_body):
            yield line + "\n"

    return LineStream(lines(), media_type=NDJSON, headers=headers)
