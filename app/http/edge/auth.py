"""Optional key check on every API route: a bearer key (or Anthropic's `x-api-key` header), or
the playground's session cookie; errors take the route's protocol shape."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from litestar import Request
from litestar.response import Redirect
from localoip.app.core.errors import Unauthorized
from localoip.app.http.edge.session import COOKIE, Sessions

OPEN_PATHS = ("/v2/health/", "/static/", "/signin", "/signout")
"""Kubernetes probes carry no key; the sign-in page needs its files."""
OPEN_PROBES = (("HEAD", "/"),)
"""Liveness checks that carry no key and get no body: Ollama's CLI's HEAD /."""


def require_key(key: str, sessions: Sessions) -> Callable[[Request], Awaitable[Redirect | None]]:
    """A before-request hook: requests must send `Authorization: Bearer <key>` or
    `x-api-key: <key>` (Anthropic's SDKs send that), or come from a signed-in playground; the
    playground's page sends a signed-out browser to sign in."""
    expected, bare = f"Bearer {key}".encode(), key.encode()

    async def check(request: Request) -> Redirect | None:
        path = request.url.path
        if path.startswith(OPEN_PATHS) or (request.method, path) in OPEN_PROBES:
            return None
        given = request.headers.get("authorization", "").encode()
        api_key = request.headers.get("x-api-key", "").encode()
        if (
            hmac.compare_digest(given, expected)
            or hmac.compare_digest(api_key, bare)
            or sessions.valid(request.cookies.get(COOKIE))
        ):
            return None
        if path == "/" and request.method == "GET":
            return Redirect("/signin")
        if path.startswith("/ui/"):
            raise Unauthorized("you are signed out: reload the page to sign in again")
        raise Unauthorized(
            "missing or wrong API key; send 'Authorization: Bearer <key>' or 'x-api-key: <key>'"
        )

    return check
