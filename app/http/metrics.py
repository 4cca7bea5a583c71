"""The metrics' HTTP side: every routed request counted and timed, and GET /metrics."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from litestar import Response, get
from localoip.app.core.metrics import Metrics, noting_model
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Message, Receive, Scope, Send


def counting(metrics: Metrics) -> Callable[[ASGIApp], ASGIApp]:
    """Middleware that counts and times every HTTP request in `metrics`, labelled with its
    route template, the model it was for (see note_model) and its status."""

    def middleware(app: ASGIApp) -> ASGIApp:
        async def counted(scope: Scope, receive: Receive, send: Send) -> Any:
            if scope["type"] != "http":
                return await app(scope, receive, send)
            status = 500

            async def sending(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

            start = time.perf_counter()
            with noting_model() as model:
                try:
                    return await app(scope, receive, sending)
                finally:
                    route = scope.get("path_template", scope["path"])
                    seconds = time.perf_counter() - start
                    metrics.request(route, model[0] if model else "", status, seconds)

        return counted

    return middleware


@get("/metrics", include_in_schema=False)
async def metrics_route(metrics: Metrics) -> Response[bytes]:
    """Prometheus text format."""
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
