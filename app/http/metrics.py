"""GET /metrics: the app's Prometheus metrics in the text format."""

from __future__ import annotations

from litestar import Response, get
from localoip.app.core.metrics import Metrics
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST


@get("/metrics", include_in_schema=False)
async def metrics_route(metrics: Metrics) -> Response[bytes]:
    """Prometheus text format."""
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
