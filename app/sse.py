"""Server-sent events: an error after the stream has begun becomes its last data frame."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import msgspec
from localoip.app.errors import Problem, classify


async def guarded(
    frames: AsyncIterator[str], error_body: Callable[[Problem], dict]
) -> AsyncIterator[str]:
    """Pass frames through; an exception is sent as one frame in the protocol's error shape."""
    try:
        async for frame in frames:
            yield frame
    except Exception as exc:
        yield msgspec.json.encode(error_body(classify(exc))).decode()
