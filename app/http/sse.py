"""Server-sent events: errors before the first item get a status; later ones, a last frame."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from typing import Any, TypeVar

import msgspec
from litestar.response import ServerSentEvent, ServerSentEventMessage
from localoip.app.core.errors import Problem
from localoip.app.http.errors import classify

T = TypeVar("T")
Frame = str | ServerSentEventMessage
"""An SSE frame: its data alone, or a whole event (a name, as Anthropic's events have)."""


class EventStream(ServerSentEvent):
    """SSE that stays `text/event-stream` even from handlers that can also answer JSON.

    Litestar otherwise applies such a handler's default media type, application/json.
    """

    def to_asgi_response(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["media_type"] = "text/event-stream"
        return super().to_asgi_response(*args, **kwargs)


async def primed(items: AsyncIterator[T]) -> AsyncIterator[T]:
    """Wait for the first item before the response starts.

    Errors raised before the model produces anything (a bad setting the runtime
    rejects, an unreachable upstream) then get a real status code instead of an
    error frame after a 200.
    """
    try:
        first = await anext(items)
    except StopAsyncIteration:
        return items

    async def chained() -> AsyncIterator[T]:
        async with aclosing(items):  # a consumer that stops early stops the source too
            yield first
            async for item in items:
                yield item

    return chained()


async def guarded(
    frames: AsyncIterator[Frame],
    error_body: Callable[[Problem], object],
    error_event: str | None = None,
) -> AsyncIterator[Frame]:
    """Pass frames through; an exception is sent as one frame in the protocol's error shape,
    as an event named `error_event` when the protocol names its events."""
    try:
        async for frame in frames:
            yield frame
    except Exception as exc:
        data = msgspec.json.encode(error_body(classify(exc))).decode()
        yield data if error_event is None else ServerSentEventMessage(data=data, event=error_event)
