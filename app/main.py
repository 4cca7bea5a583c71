"""create_app(settings) -> Litestar: the wiring, top to bottom."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.di import Provide
from localoip.app.config import Settings
from localoip.app.errors import OIP_HANDLERS
from localoip.app.oip.dataplane import DataPlane
from localoip.app.oip.routes import HealthController, OipController, RepositoryController
from localoip.app.registry import Registry


def create_app(settings: Settings) -> Litestar:
    registry = Registry(settings.models)
    dataplane = DataPlane(registry)

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        # Live at once; models load in the background and /v2/health/ready waits for them.
        registry.mark_loading()
        loading = asyncio.create_task(registry.load_all())
        try:
            yield
        finally:
            loading.cancel()
            await asyncio.gather(loading, return_exceptions=True)
            await registry.unload_all()

    return Litestar(
        route_handlers=[HealthController, OipController, RepositoryController],
        dependencies={
            "dataplane": Provide(lambda: dataplane, use_cache=True, sync_to_thread=False)
        },
        exception_handlers=OIP_HANDLERS,
        lifespan=[lifespan],
        request_max_body_size=settings.server.max_body_bytes,
        debug=False,
    )
