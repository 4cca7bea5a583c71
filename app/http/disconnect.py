"""The middleware that lets the core notice a client hanging up (app/core/disconnect.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from localoip.app.core.disconnect import Watch, watching

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Receive, Scope, Send


def watch_disconnects(app: ASGIApp) -> ASGIApp:
    """Middleware that makes the core's unless_client_gone() work inside HTTP handlers."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> Any:
        if scope["type"] != "http":
            return await app(scope, receive, send)
        watch = Watch(receive)
        with watching(watch):
            return await app(scope, watch.receive, send)

    return middleware
