"""Which browser Origins may change state: the server's own pages, loopback, cors_origins."""

from __future__ import annotations

from urllib.parse import urlsplit

from localoip.app.http.edge.hosts import host_name, is_loopback
from localoip.app.http.edge.refusals import Forbidden

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def origin_allowed(origin: str, host: str | None, cors_origins: list[str]) -> bool:
    """Whether a request from a page at `origin` may change state on the server at `host`."""
    if origin in cors_origins or "*" in cors_origins:
        return True
    parts = urlsplit(origin.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False  # "null" (a sandboxed frame, a file:// page) and anything odd
    if host is not None and parts.netloc.lower() == host.strip().lower():
        return True  # same origin: the playground's own page, wherever it is served from
    name = host_name(parts.netloc)
    return name is not None and is_loopback(name)


def check_origin(method: str, origin: str | None, host: str | None, cors: list[str]) -> None:
    """Raise 403 when a page from a foreign origin tries to change state."""
    if origin is None or method in SAFE_METHODS:
        return
    if not origin_allowed(origin, host, cors):
        raise Forbidden(
            f"requests from the web page at {origin!r} are refused; a page that should call "
            "this server must be listed in [server] cors_origins",
            code="origin_not_allowed",
        )
