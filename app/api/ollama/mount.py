"""Where the Ollama API is served: its controllers at /api/*, answering errors in Ollama's
shape. (HEAD /, its liveness check, is models.ollama_alive; GET / stays the playground.)"""

from __future__ import annotations

from typing import Any

from litestar import Controller
from localoip.app.api.ollama.chat import ChatController
from localoip.app.api.ollama.embed import EmbedController
from localoip.app.api.ollama.models import ModelsController
from localoip.app.api.ollama.pull import PullController
from localoip.app.http.errors import OLLAMA_HANDLERS
from localoip.app.http.mount import mounted

CONTROLLERS: list[type[Controller]] = [
    ChatController,
    EmbedController,
    ModelsController,
    PullController,
]


def ollama_routes() -> list[Any]:
    """Every Ollama route under /api, with errors as `{"error": "..."}` and Ollama's statuses."""
    return mounted(CONTROLLERS, exception_handlers=OLLAMA_HANDLERS)
