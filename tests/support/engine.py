"""Running a request on a loaded llama.cpp runtime's batching engine from a test."""

from __future__ import annotations

import queue

from localoip.runtimes.capabilities import ChatRequest, TextDelta
from localoip.runtimes.llamacpp.runtime import LlamaCppRuntime


def engine_deltas(runtime: LlamaCppRuntime, request: ChatRequest) -> list[TextDelta]:
    """The engine's deltas for chat `request`, up to its end (the runtime must take it on the
    engine); an error the engine emits is raised."""
    items: queue.Queue[TextDelta | BaseException | None] = queue.Queue()
    assert runtime.chat_batched(request, items.put) is not None
    deltas = []
    while (item := items.get(timeout=60)) is not None:
        if isinstance(item, BaseException):
            raise item
        deltas.append(item)
    return deltas
