"""Optional bearer-key check on every API route; errors take the route's protocol shape."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from litestar import Request
from localoip.app.errors import Unauthorized

OPEN_PATHS = ("/v2/health/",)
"""Kubernetes probes carry no key."""


def require_key(key: str) -> Callable[[Request], Awaitable[None]]:
    """A before-request hook: requests must send `Authorization: Bearer <key>`."""
    expected = f"Bearer {key}".encode()

    async def check(request: Request) -> None:
        if request.url.path.startswith(OPEN_PATHS):
            return
        given = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            raise Unauthorized("missing or wrong API key; send 'Authorization: Bearer <key>'")

    return check
