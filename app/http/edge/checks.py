"""The edge checks, in order, as one before-request hook: Host, Origin, the body's media type
(the ones the route declares) and coding, then the key. Each refusal is raised, so it takes the
route's own error shape."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Request
from localoip.app.http.edge.compression import check_content_coding
from localoip.app.http.edge.hosts import HostPolicy
from localoip.app.http.edge.media_types import accepted, check_media_type
from localoip.app.http.edge.origins import SAFE_METHODS, check_origin
from localoip.app.http.edge.refusals import Forbidden

Hook = Callable[[Request], Awaitable[Any]]


def edge_checks(hosts: HostPolicy, cors_origins: list[str], then: Hook | None) -> Hook:
    """A before-request hook: refuse what a hostile web page could send, then run `then`."""

    async def check(request: Request) -> Any:
        host = request.headers.get("host")
        if not hosts.allows(host) or len(request.headers.getall("host", [])) > 1:
            raise Forbidden(
                f"this server does not answer to the Host {host!r}; add the name to "
                "[server] allowed_hosts (or --allowed-hosts) if you reach it by that name",
                code="host_not_allowed",
            )
        method = request.method
        check_origin(method, request.headers.get("origin"), host, cors_origins)
        if method not in SAFE_METHODS:
            wanted = accepted(request.route_handler.opt)
            check_media_type(wanted, request.headers.get("content-type"))
            check_content_coding(request.headers.get("content-encoding"))
        return await then(request) if then is not None else None

    return check
