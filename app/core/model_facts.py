"""What a configured model is, in the field names clients read: /v1/models, the model card,
the OIP model metadata and repository index all give the same ones."""

from __future__ import annotations

import time
from typing import Any

from localoip.app.core.models.handle import ModelHandle
from localoip.runtimes.facts import ModelFacts

STARTED = int(time.time())
"""When this server started (Unix seconds): every model's creation time in the model lists."""


def model_facts(handle: ModelHandle) -> ModelFacts:
    """The loaded model's facts; before it loads, the context length its options ask for
    (llama.cpp's `n_ctx`; None for "auto", which only the loaded file and memory tell)."""
    runtime = handle.runtime
    if runtime is not None:
        return runtime.facts()
    options = handle.spec.options
    n_ctx = getattr(options, "n_ctx", None)
    return ModelFacts(
        context_length=n_ctx if isinstance(n_ctx, int) else None,
        vision=getattr(options, "mmproj", None) is not None,
    )


def facts_fields(handle: ModelHandle) -> dict[str, Any]:
    """`context_length` and vLLM's `max_model_len` (tokens in use), `max_context_length`
    (LM Studio's name for the trained maximum), `context_sized` (how "auto" chose the
    context, in words), `quantization` and `file_size` (bytes); None for what is not known;
    `vision` when its chats read images."""
    facts = model_facts(handle)
    return {
        "context_length": facts.context_length,
        "max_model_len": facts.context_length,
        "max_context_length": facts.trained_context_length,
        "context_sized": facts.context_sized,
        "quantization": facts.quantization,
        "file_size": facts.file_size,
        "vision": facts.vision,
    }
