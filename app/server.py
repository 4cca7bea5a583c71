"""create_app(settings) -> Litestar: the wiring, top to bottom."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version

from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from localoip.app.api.anthropic.models import shared_answer
from localoip.app.api.anthropic.mount import anthropic_routes
from localoip.app.api.oip.dataplane import DataPlane
from localoip.app.api.oip.routes import HealthController, OipController, RepositoryController
from localoip.app.api.ollama.models import ollama_alive
from localoip.app.api.ollama.mount import ollama_routes
from localoip.app.api.openai.images import ImageStore
from localoip.app.api.openai.mount import openai_routes
from localoip.app.api.openai.records import OpenAIStore
from localoip.app.api.openai.responses.runs import Runs
from localoip.app.api.openai.responses.sealer import Sealer, key_file
from localoip.app.api.openai.tables import OPENAI_TABLES
from localoip.app.core.config import Settings
from localoip.app.core.image_urls import ImageFetcher
from localoip.app.core.registry import Registry
from localoip.app.core.runners.base import RunnerKind
from localoip.app.core.store import store_file
from localoip.app.http.disconnect import watch_disconnects
from localoip.app.http.edge.wiring import Edge
from localoip.app.http.errors import APP_HANDLERS
from localoip.app.http.metrics import counting, metrics_route
from localoip.app.playground.records.tables import PLAYGROUND_TABLES
from localoip.app.playground.routes import ui_routes
from localoip.app.playground.signin import SignInController
from localoip.app.playground.templates import static_router, template_config


def create_app(settings: Settings, runners: RunnerKind = "process") -> Litestar:
    """The app serving `settings`. `runners="in-process"` runs local models in this process
    instead of a runner process each: the whole app in one process, for tests."""
    registry = Registry(settings.models, server=settings.server, runners=runners)
    metrics = registry.metrics
    dataplane = DataPlane(registry)
    images = ImageStore()
    store = OpenAIStore(
        store_file(settings.server.store_path, settings.path.parent),
        (OPENAI_TABLES, PLAYGROUND_TABLES),
        settings.server.store_retention_days,
    )
    runs = Runs(store)
    sealer = Sealer(key_file(store.path))
    edge = Edge(settings.server, os.environ.get(settings.server.api_key_env))

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

    def provide(value: object) -> Provide:
        return Provide(lambda: value, use_cache=True, sync_to_thread=False)

    return Litestar(
        route_handlers=[
            HealthController,
            OipController,
            RepositoryController,
            *openai_routes(),
            *anthropic_routes(),
            *ollama_routes(),
            metrics_route,
            *ui_routes(),
            ollama_alive,  # after the playground's GET /: Litestar keeps the first OPTIONS of "/"
            SignInController,
            static_router(),
        ],
        dependencies={
            "registry": provide(registry),
            "dataplane": provide(dataplane),
            "images": provide(images),
            "image_fetcher": provide(ImageFetcher(settings.server)),
            "store": provide(store),
            "runs": provide(runs),
            "sealer": provide(sealer),
            "metrics": provide(metrics),
            "sessions": provide(edge.sessions),
            "api_key_env": provide(edge.key_env),
            # GET /v1/models is OpenAI's route; it answers Anthropic's clients in their shape
            "shared_models": provide({"anthropic": shared_answer}),
        },
        exception_handlers=APP_HANDLERS,
        template_config=template_config(),
        before_request=edge.before_request,
        middleware=[counting(metrics), edge.decode_bodies, watch_disconnects],
        compression_config=edge.compression,
        cors_config=CORSConfig(allow_origins=settings.server.cors_origins)
        if settings.server.cors_origins
        else None,
        lifespan=[lifespan, store.lifespan, runs.lifespan],  # ends in reverse: runs first
        openapi_config=OpenAPIConfig(title="localoip", version=version("localoip")),
        request_max_body_size=settings.server.max_body_bytes,
        debug=False,
    )
