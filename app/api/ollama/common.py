"""What every Ollama route shares: the model a name stands for, the names clients show, what a
model is in Ollama's words (its details and capabilities), and a request's clock."""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field

from localoip.app.core.errors import InvalidInput, ModelNotFound
from localoip.app.core.model_facts import model_facts
from localoip.app.core.registry import ModelHandle, Registry
from localoip.runtimes.capabilities import Capability
from localoip.runtimes.facts import ModelFacts
from localoip.runtimes.wire.ollama.requests import Options, hub_source
from localoip.runtimes.wire.ollama.responses import Metrics, ModelDetails

log = logging.getLogger("localoip")

LATEST = ":latest"
"""The tag Ollama clients add to a bare name."""

SERVED = frozenset({Capability.CHAT, Capability.COMPLETION, Capability.EMBED})
"""What Ollama's routes can ask a model for: models that do none of it (images, reranking) are
not listed."""

FORMATS = {"llama-cpp": "gguf", "sentence-transformers": "safetensors"}


def shown_name(name: str) -> str:
    """A model's name as Ollama clients show it: with a tag (`smollm2:latest`)."""
    return name if ":" in name else name + LATEST


def configured(registry: Registry, name: str) -> ModelHandle | None:
    """The configured model an Ollama name stands for, if any: its own name, that name less
    `:latest`, or for `hf.co/owner/repo:QUANT` the model whose source is that `hf:` one."""
    for candidate in (name, name.removesuffix(LATEST)):
        if candidate in registry.models:
            return registry.get(candidate)
    source = hub_source(name)
    for handle in registry.models.values():
        if source is not None and str(handle.spec.source).lower() == source.lower():
            return registry.get(handle.name)
    return None


def resolve(registry: Registry, name: str) -> ModelHandle:
    """The model a request names. InvalidInput (400) without a name; ModelNotFound (404), naming
    the configured models, or for a hub name how to configure it."""
    if not name:
        raise InvalidInput("model is required", "model")
    handle = configured(registry, name)
    if handle is not None:
        return handle
    source = hub_source(name)
    if source is not None:
        raise ModelNotFound(
            f"model {name!r} is not configured: add a [[models]] table with "
            f'source = "{source}" to models.toml (POST /api/pull downloads its files)',
            "model",
        )
    return registry.get(name.removesuffix(LATEST))


def cap_num_ctx(handle: ModelHandle, options: Options | None) -> None:
    """Serve `options.num_ctx` within the context the model has: one up to it is served as
    it is (the window is at least what was asked for); a larger one is logged and served
    within it, as Ollama caps num_ctx at a model's maximum, since the context is sized when
    the model loads and one model serves every client. A prompt that does not fit is the
    runtime's 400, as on every route."""
    asked = options.num_ctx if options else None
    context = model_facts(handle).context_length
    if asked is not None and context is not None and asked > context:
        log.warning(
            "num_ctx %d is more than model %r's context, %d (n_ctx in models.toml): served "
            "within it",
            asked,
            handle.name,
            context,
        )


def listed(registry: Registry) -> list[ModelHandle]:
    """The models Ollama's lists show: those that chat, complete or embed."""
    return [h for h in registry.models.values() if h.capabilities & SERVED]


def digest(handle: ModelHandle) -> str:
    """A digest that names the model: the sha256 of its name and source (not of its weights,
    which /api/tags would otherwise hash on every call)."""
    return hashlib.sha256(f"{handle.name}\n{handle.spec.source}".encode()).hexdigest()


def parameter_size(count: int | None) -> str:
    """A weight count as Ollama writes it: "135M", "1.7B"; "" when unknown."""
    if not count:
        return ""
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if count >= size:
            return f"{count / size:.3g}{unit}"
    return str(count)


def details(handle: ModelHandle, facts: ModelFacts | None = None) -> ModelDetails:
    """The model's details from what is known of it (more once it has loaded); a model with a
    projector lists its family "clip" too, as Ollama lists a projector's architecture."""
    facts = facts or model_facts(handle)
    family = facts.architecture or handle.spec.runtime
    return ModelDetails(
        format=FORMATS.get(handle.spec.runtime, ""),
        family=family,
        families=[family, "clip"] if facts.vision else [family],
        parameter_size=parameter_size(facts.parameters),
        quantization_level=facts.quantization or "",
    )


def capabilities(handle: ModelHandle, facts: ModelFacts) -> list[str]:
    """Ollama's words for what the model does: "completion" and "tools" for a chat model
    (localoip offers tools to every chat template), "thinking" when its replies reason,
    "vision" when its chats read images (a projector), "insert" with fill-in-the-middle
    tokens, "embedding"."""
    can = handle.capabilities
    words = []
    if Capability.CHAT in can or Capability.COMPLETION in can:
        words.append("completion")
    if Capability.CHAT in can:
        words.append("tools")
        if facts.reasons:
            words.append("thinking")
        if facts.vision:
            words.append("vision")
    if Capability.COMPLETION in can and facts.fills_in:
        words.append("insert")
    if Capability.EMBED in can:
        words.append("embedding")
    return words


@dataclass
class Clock:
    """A request's durations as Ollama reports them, in nanoseconds: `cold` when the model
    was not loaded as the request came, so its load counts as `load_duration`."""

    cold: bool
    start: int = field(default_factory=time.perf_counter_ns)
    first: int | None = None  # when the first token came

    @classmethod
    def of(cls, handle: ModelHandle) -> Clock:
        return cls(cold=handle.runtime is None)

    def token(self) -> None:
        if self.first is None:
            self.first = time.perf_counter_ns()

    def metrics(self, handle: ModelHandle, prompt_tokens: int, tokens: int) -> Metrics:
        """The counts and durations: the prompt's time is the wait for the first token (the
        queue and the prompt's reading) less the load; the rest is generating."""
        end = time.perf_counter_ns()
        load = int((handle.load_seconds or 0) * 1e9) if self.cold else 0
        first = self.first or end
        return Metrics(
            total_duration=end - self.start,
            load_duration=load,
            prompt_eval_count=prompt_tokens,
            prompt_eval_duration=max(first - self.start - load, 0),
            eval_count=tokens,
            eval_duration=end - first,
        )
