"""Where each OpenAI API is served: the one list of their controllers, mounted.

An API in OpenAI's shape is one module with one Controller, listed here once with where it is
served. API routes answer at /v1, at KServe's /openai/v1, and under each model's Seldon-style
/v2/models/{model}/infer and infer_stream paths (where the URL names the model); ROOT routes
answer at the top, as vLLM serves /rerank, /tokenize and /detokenize.
"""

from __future__ import annotations

import enum
from typing import Any

from litestar import Controller
from litestar.di import Provide
from localoip.app.api.openai.audio import AudioController
from localoip.app.api.openai.chat import ChatController
from localoip.app.api.openai.completions import CompletionsController
from localoip.app.api.openai.embeddings import EmbeddingsController
from localoip.app.api.openai.images import ImageFilesController, ImagesController
from localoip.app.api.openai.models import ModelsController
from localoip.app.api.openai.rerank import RerankController
from localoip.app.api.openai.responses.routes import ResponsesController
from localoip.app.api.openai.stored import StoredCompletionsController
from localoip.app.api.openai.tokenize import TokenizeController
from localoip.app.http.errors import OPENAI_HANDLERS
from localoip.app.http.mount import mounted


class At(enum.Flag):
    API = enum.auto()
    ROOT = enum.auto()


CONTROLLERS: list[tuple[type[Controller], At]] = [
    (ModelsController, At.API),
    (ChatController, At.API),
    (StoredCompletionsController, At.API),
    (CompletionsController, At.API),
    (EmbeddingsController, At.API),
    (ImagesController, At.API),
    (ImageFilesController, At.ROOT),
    (RerankController, At.API | At.ROOT),
    (ResponsesController, At.API),
    (AudioController, At.API),
    (TokenizeController, At.ROOT),
]

API_PREFIXES = (
    "/v1",
    "/openai/v1",
    "/v2/models/{model:str}/infer",
    "/v2/models/{model:str}/infer_stream",
)


def no_route_model() -> None:
    return None


def sub_route_model(model: str) -> str:
    return model


def openai_routes() -> list[Any]:
    """Every OpenAI route, mounted where CONTROLLERS says, answering errors in OpenAI's shape.

    The API controllers are joined into one class per prefix: two controllers sharing a path
    (GET and POST /chat/completions) would each add their own OPTIONS handler to it."""
    api = [c for c, at in CONTROLLERS if At.API in at]
    joined = [type("OpenAIRoutes", tuple(api), {})]
    routes: list[Any] = []
    for prefix in API_PREFIXES:
        model = sub_route_model if "{model" in prefix else no_route_model
        routes += mounted(
            joined,
            prefix,
            dependencies={"route_model": Provide(model, sync_to_thread=False)},
            exception_handlers=OPENAI_HANDLERS,
        )
    root = [c for c, at in CONTROLLERS if At.ROOT in at]
    routes += mounted(
        root,
        dependencies={"route_model": Provide(no_route_model, sync_to_thread=False)},
        exception_handlers=OPENAI_HANDLERS,
    )
    return routes
