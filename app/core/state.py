"""A model's state as the protocols report it."""

from __future__ import annotations

import enum


class ModelState(enum.StrEnum):
    LOADING = "LOADING"
    READY = "READY"
    UNAVAILABLE = "UNAVAILABLE"
    UNLOADED = "UNLOADED"


CRASHED = "runner crashed"
"""The start of the reason of a model whose runner died."""

IDLE = "idle; loads on the next request"
"""The reason of a model that is not loaded and loads when a request asks for it."""
