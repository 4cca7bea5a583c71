"""Per-runtime `[models.options]` schemas, checked when models.toml is read (no heavy imports)."""

from __future__ import annotations

import math
import re
from typing import Annotated, Literal

import msgspec
from localoip.runtimes.capabilities import Capability

DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def seconds_of(value: float | str) -> float:
    """Seconds for a keep_alive: a number of seconds (300, "300", "-1") or a Go duration, as
    Ollama reads one ("30s", "5m", "1h30m"). ValueError for anything else, NaN included."""
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = value.strip()
        sign = -1.0 if text.startswith("-") else 1.0
        body = text.lstrip("+-")
        try:
            seconds = sign * float(body)
        except ValueError:
            parts = DURATION.findall(body)
            if not body or "".join(n + u for n, u in parts) != body:
                raise ValueError(
                    f"keep_alive {value!r} is not a duration such as 300, '30s', '5m'"
                ) from None
            seconds = sign * sum(float(n) * UNIT_SECONDS[u] for n, u in parts)
    if math.isnan(seconds):
        raise ValueError(f"keep_alive {value!r} is not a duration such as 300, '30s', '5m'")
    return seconds


def duration_seconds(value: float | str | None) -> float | None:
    """Seconds for a model's keep_alive (seconds_of); None or a negative one means forever."""
    if value is None:
        return None
    seconds = seconds_of(value)
    return None if seconds < 0 else seconds


GENERATION_QUEUE = 64
EMBED_QUEUE = 1024  # Ollama queues 512; a burst of 256 one-sentence embeddings must all fit


class ModelOptions(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Scheduling options every runtime accepts."""

    # requests waiting or running, then 429; unset: by what a request costs (queue_limit)
    max_queue: Annotated[int, msgspec.Meta(ge=1)] | None = None
    keep_alive: float | str | None = None  # unload after this long idle (Ollama's keep_alive)
    max_batch_size: Annotated[int, msgspec.Meta(ge=1)] = 64  # embedding inputs encoded at once
    max_batch_ms: Annotated[float, msgspec.Meta(ge=0)] = 2.0  # wait to fill an embedding batch

    def __post_init__(self) -> None:
        duration_seconds(self.keep_alive)

    @property
    def keep_alive_seconds(self) -> float | None:
        return duration_seconds(self.keep_alive)

    @property
    def queue_limit(self) -> int:
        """Requests that may wait or run at once: `max_queue`, or the kind's default."""
        return self.max_queue or self.default_queue()

    def default_queue(self) -> int:
        """A generation or an image costs seconds: 64 may wait. An embedding of a sentence
        costs milliseconds and comes in bursts (a RAG ingestion): EMBED_QUEUE may wait."""
        cheap = {Capability.EMBED, Capability.RERANK}
        return EMBED_QUEUE if self.capabilities() <= cheap else GENERATION_QUEUE

    def capabilities(self) -> frozenset[Capability]:
        raise NotImplementedError


class DraftModel(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A `draft` option as config resolves it: the draft model's name and its source (a
    Source's kind and value, a file's path once the runner has it here)."""

    name: str
    kind: str
    source: str


class LlamaCppOptions(ModelOptions):
    # tokens per sequence; "auto": the model's trained context, cut to what the slots' KV
    # cache may take (devices.context_tokens)
    n_ctx: int | Literal["auto"] = 2048
    n_gpu_layers: int | Literal["auto"] = "auto"  # auto: every layer when llama.cpp has a GPU
    n_batch: int = 512
    threads: int | None = None
    chat_format: str | None = None
    embedding: bool = False
    seed: int = 0
    warmup: bool = True
    # generations that share each decode step (continuous batching); 1: one at a time;
    # "auto": on a CPU 4 a decoding thread for a model under 1 GiB (8 for the demo models on 2
    # threads), else 2 a thread, up to 16; 8 with a GPU backend; fewer if their KV cache would
    # not fit (devices.first_slots)
    parallel: Annotated[int, msgspec.Meta(ge=1, le=256)] | Literal["auto"] = "auto"
    # tokens per shared decode step (one per stream plus prompt chunks); sizes its buffers
    parallel_batch: Annotated[int, msgspec.Meta(ge=1)] = 128
    # prompts are read in chunks of this many tokens at fixed positions, so a cached prefix
    # gives the same numbers as a fresh read (see llamacpp_serial)
    prompt_chunk: Annotated[int, msgspec.Meta(ge=1)] = 16
    # requests with a seed run on the one-at-a-time context (interleaved with the engine's
    # steps), as the engine's numbers depend on what else shares a step; false batches them
    # too, and they may then differ run to run
    reproducible: bool = True
    # requests run as seeded ones do (one at a time, prompts in aligned chunks), so greedy
    # output is the same whatever the cache holds or shares the batch; a request's own
    # `deterministic` overrides it
    deterministic: bool = False
    # a chat's reasoning_effort when the request names none (none|minimal|low|medium|high),
    # passed to the template as its own switch (llamacpp/reasoning.py); None: the template's
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high"] | None = None
    # reasoning tokens a chat may spend before its reasoning is closed; None: no limit
    max_reasoning_tokens: Annotated[int, msgspec.Meta(ge=0)] | None = None
    # the image projector GGUF (mmproj-*.gguf) that makes a chat model read images through
    # llama.cpp's mtmd; a path, relative to models.toml (config.py resolves and checks it)
    mmproj: str | None = None
    # what a chat's images may be, checked (and decoded, by Pillow) before mtmd sees them
    max_images: Annotated[int, msgspec.Meta(ge=1)] = 8
    max_image_bytes: Annotated[int, msgspec.Meta(ge=1)] = 20 * 1024 * 1024
    max_image_pixels: Annotated[int, msgspec.Meta(ge=1)] = 4096 * 4096
    # a prompt longer than the context: refused (400 context_length_exceeded), cut in its
    # middle, or its oldest turns dropped (llamacpp/context.py)
    context_overflow: Literal["error", "truncate_middle", "rolling_window"] = "error"
    # the KV cache's number type: q8_0 and q4_0 take about 1/2 and 1/4 of f16's memory, and
    # turn flash attention on (llamacpp/kv.py)
    kv_cache_type: Literal["f16", "q8_0", "q4_0"] = "f16"
    # speculative decoding in the batching engine (llamacpp/speculation.py): drafts from
    # prompt lookup ("ngram"), from the `draft` model ("draft"), or none ("off": the default,
    # as llama-server's: free text keeps its speed with it, but its effect on 8 or more
    # concurrent streams is not measured yet; docs/benchmarks.md); `draft_max` tokens a step
    # at most
    speculative: Literal["off", "ngram", "draft"] = "off"
    draft_max: Annotated[int, msgspec.Meta(ge=1, le=64)] = 32
    # the draft model of speculative = "draft": the name of a llama-cpp chat model in
    # models.toml with the same vocabulary (itself too); config resolves it to a DraftModel
    draft: str | DraftModel | None = None
    # llama.cpp's flash attention, on both paths (llama-server's default on a CPU). The
    # engine's slots share one KV cache, and without it every token scores every slot's kept
    # cells: a stream ran at 0.64-0.77 of in-process beside 3 kept prompts, 0.94-1.11 with it.
    # A sequence's rows then have the same numbers however many of its rows a step decodes
    # (a verified draft's, a prompt chunk's), but depend on the other sequences in the step;
    # off, the reverse (docs/benchmarks.md)
    flash_attn: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n_ctx != "auto" and self.n_ctx < 1:
            raise ValueError(
                f'n_ctx {self.n_ctx} is not a context: a number of tokens >= 1, or "auto" '
                "(the model's trained context, as memory allows)"
            )
        if self.mmproj is not None and self.embedding:
            raise ValueError("mmproj is for chat models, not embedding = true")
        if self.speculative == "draft" and self.draft is None:
            raise ValueError(
                'speculative = "draft" needs draft = "<the name of a llama-cpp model in '
                'models.toml>"'
            )
        if self.draft is not None and self.speculative != "draft":
            raise ValueError(
                f'draft = {self.draft_name!r} is used only with speculative = "draft", '
                f"not {self.speculative!r}"
            )

    @property
    def draft_name(self) -> str | None:
        """The name of the draft model, as models.toml gives it."""
        return self.draft.name if isinstance(self.draft, DraftModel) else self.draft

    def capabilities(self) -> frozenset[Capability]:
        if self.embedding:
            return frozenset({Capability.EMBED})
        return frozenset({Capability.CHAT, Capability.COMPLETION})


class SentenceTransformersOptions(ModelOptions):
    kind: Literal["embedding", "cross-encoder"] = "embedding"  # a cross-encoder only reranks
    device: str = "auto"  # auto: cuda, then mps, then cpu
    batch_size: int = 32
    threads: int | None = None
    normalize: bool = True

    def capabilities(self) -> frozenset[Capability]:
        if self.kind == "cross-encoder":
            return frozenset({Capability.RERANK})
        return frozenset({Capability.EMBED})


class DiffusersOptions(ModelOptions):
    device: str = "auto"  # auto: cuda, then mps, then cpu
    dtype: str = "float32"
    threads: int | None = None
    steps: int = 20
    width: int = 512
    height: int = 512
    guidance_scale: float = 7.5
    max_images: int = 4
    max_size: int = 1024  # the widest and tallest image a request may ask for; CPUs are slow

    def capabilities(self) -> frozenset[Capability]:
        return frozenset({Capability.IMAGE})


class WhisperOptions(ModelOptions):
    """A faster-whisper (CTranslate2) speech-to-text model."""

    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto: CUDA when CTranslate2 has it
    # CTranslate2's weights type; int8 measured fastest on a CPU (docs/benchmarks.md)
    compute_type: Literal[
        "default",
        "auto",
        "int8",
        "int8_float32",
        "int8_float16",
        "int8_bfloat16",
        "int16",
        "float16",
        "bfloat16",
        "float32",
    ] = "int8"
    threads: Annotated[int, msgspec.Meta(ge=1)] | None = None  # unset: CTranslate2's choice
    beam_size: Annotated[int, msgspec.Meta(ge=1, le=16)] = 5  # 1: greedy, faster
    # true: a window whose text repeats or is unlikely is decoded again at higher temperatures
    # (OpenAI's rule for temperature 0); CTranslate2's sampling takes no seed, so such a
    # transcription may differ run to run. false: the temperature asked for, reproducible
    fallback: bool = False
    condition_on_previous_text: bool = True  # each window is prompted with the last's text
    vad_filter: bool = False  # skip silence first (faster-whisper's Silero VAD)
    max_new_tokens: Annotated[int, msgspec.Meta(ge=1, le=440)] | None = None  # per window
    max_audio_bytes: Annotated[int, msgspec.Meta(ge=1)] = 25 * 1024 * 1024  # OpenAI's 25 MB
    max_audio_seconds: Annotated[float, msgspec.Meta(gt=0)] = 3600.0  # decoded audio, at most

    def capabilities(self) -> frozenset[Capability]:
        return frozenset({Capability.TRANSCRIBE})


class RemoteOptions(ModelOptions):
    """A model served by another server, whose base URL is the `source`.

    `serves` is written `capabilities` in models.toml: what the upstream model offers.
    """

    model: str | None = None  # the upstream model's name; config defaults it to ours
    api_key_env: str | None = None  # the variable holding the upstream API key; unset: none sent
    serves: Annotated[
        list[Literal["chat", "completion", "embed", "image", "transcribe"]],
        msgspec.Meta(min_length=1),
    ] = msgspec.field(default_factory=lambda: ["chat", "completion"], name="capabilities")
    timeout: Annotated[float, msgspec.Meta(gt=0)] = 600.0  # seconds for one upstream request
    retry_seconds: Annotated[float, msgspec.Meta(ge=0)] = 5.0  # re-probe while down; 0: never
    max_images: int = 10  # the most images one request may ask for
    max_size: int = 4096  # the widest and tallest image a request may ask for
    # requests sent to the upstream at once, over one pooled keep-alive client; more wait
    max_concurrency: Annotated[int, msgspec.Meta(ge=1, le=4096)] = 64

    def default_queue(self) -> int:
        """Past `max_concurrency` running, as many again may wait (64 by default) before a 429."""
        return self.max_concurrency + super().default_queue()

    def capabilities(self) -> frozenset[Capability]:
        return frozenset(Capability(c) for c in self.serves)


class OpenAIOptions(RemoteOptions):
    """A model on an OpenAI-compatible server."""


class OipOptions(RemoteOptions):
    """A model on an OIP (KServe v2) server: KServe, Triton, MLServer or another localoip."""

    # what the upstream model offers; unset: found from its metadata when it loads
    serves: (
        Annotated[
            list[Literal["chat", "completion", "embed", "image", "tensors"]],
            msgspec.Meta(min_length=1),
        ]
        | None
    ) = msgspec.field(default=None, name="capabilities")
    # the binary tensor extension: unset, used when the upstream's /v2 lists it
    binary: bool | None = None

    def capabilities(self) -> frozenset[Capability]:
        """As configured, and `tensors` (OIP requests are relayed to any such model); unset,
        `tensors` until the load finds what the metadata offers."""
        return frozenset(Capability(c) for c in self.serves or ()) | {Capability.TENSORS}
