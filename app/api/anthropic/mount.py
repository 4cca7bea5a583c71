"""Where the Anthropic Messages API is served: /v1/messages (beside OpenAI's /v1) and all of it
under /anthropic/v1, for clients whose base URL ends in /anthropic; errors in its shape."""

from __future__ import annotations

from typing import Any

from localoip.app.api.anthropic.messages import MessagesController
from localoip.app.api.anthropic.models import ModelsController
from localoip.app.http.errors import ANTHROPIC_HANDLERS
from localoip.app.http.mount import mounted

PREFIXES = {"/v1": [MessagesController], "/anthropic/v1": [MessagesController, ModelsController]}
"""The controllers at each prefix: GET /v1/models is OpenAI's route, which answers a request
carrying `anthropic-version` with models.shared_answer."""


def anthropic_routes() -> list[Any]:
    """Every Anthropic route, mounted where PREFIXES says, answering errors in its shape."""
    routes: list[Any] = []
    for prefix, controllers in PREFIXES.items():
        routes += mounted(controllers, prefix, exception_handlers=ANTHROPIC_HANDLERS)
    return routes
