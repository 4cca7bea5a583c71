"""Runtime capabilities and the neutral request/result types they speak (no HTTP here)."""

from __future__ import annotations

import abc
import enum
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
from localoip.runtimes.facts import ModelFacts
from localoip.runtimes.transcripts import Transcription, TranscriptionRequest, TranscriptPart


class Capability(enum.StrEnum):
    """What a loaded model can do; adapters route on these."""

    CHAT = "chat"
    COMPLETION = "completion"
    EMBED = "embed"
    IMAGE = "image"
    RERANK = "rerank"
    TRANSCRIBE = "transcribe"  # speech to text (and speech to English text)
    TENSORS = "tensors"  # any OIP tensors, relayed as they are to a remote OIP model


class InputError(ValueError):
    """A request the runtime cannot serve as given: a client error, naming the field."""

    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.param = param
        self.code = code


def in_vocabulary(ids: list[int], size: int, param: str) -> list[int]:
    """The token ids, if all are below the vocabulary's size and none is negative."""
    bad = [t for t in ids if not 0 <= t < size]
    if bad:
        raise InputError(
            f"{param} has token ids outside this model's vocabulary (0..{size - 1}): {bad[:5]}",
            param,
        )
    return ids


class UpstreamError(Exception):
    """An error answered by a remote server, with its status and OpenAI-style fields."""

    def __init__(
        self,
        message: str,
        status: int,
        type: str = "upstream_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type
        self.param = param
        self.code = code


FEWEST_TOKENS = {Capability.CHAT: 1, Capability.COMPLETION: 0}
"""The least `max_tokens` each surface takes for a capability: a completion may ask for none
(its echo and the prompt's logprobs only, as OpenAI's spec allows and lm-evaluation-harness
sends); a chat reply has at least one token."""


@dataclass(frozen=True, slots=True)
class Sampling:
    """Text-generation settings; None means the runtime's own default."""

    max_tokens: int | None = None  # 0: generate nothing (see FEWEST_TOKENS)
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    min_p: float | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    repeat_penalty: float | None = None
    logit_bias: dict[int, float] | None = None
    # the same text for the same request whatever the cache holds or shares the batch; None:
    # the model's `deterministic` option
    deterministic: bool | None = None
    speculative: bool | None = None  # False: no speculative decoding (None: the model's)


@dataclass(frozen=True, slots=True)
class Tool:
    """A function the model may call; `parameters` is its arguments' JSON schema, which a
    `strict` tool's forced calls follow exactly (a keyword no grammar enforces is refused)."""

    name: str
    description: str = ""
    parameters: dict[str, Any] | None = None
    strict: bool = False


@dataclass(frozen=True, slots=True)
class FieldNames:
    """What a chat's protocol calls the fields a runtime's errors name (InputError.param)."""

    json_schema: str = "response_format"  # OpenAI chat's; the Responses API's is text.format
    tool_parameters: str = "tools[{}].function.parameters"  # formatted with the tool's index


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text

    def arguments_object(self) -> dict[str, Any]:
        """The arguments as the object Anthropic's `input` and Ollama's `arguments` are: {}
        for text that is no JSON object (a call the token limit cut short)."""
        try:
            value = json.loads(self.arguments or "{}")
        except json.JSONDecodeError:
            return {}
        return value if isinstance(value, dict) else {}


IMAGE_MARKER = "<__media__>"  # where an image stands in a message's text (mtmd's default)


@dataclass(frozen=True, slots=True)
class ChatImage:
    """An image a message carries, as the request sent it (not yet checked as an image)."""

    data: bytes  # the encoded file: PNG, JPEG, ...
    param: str  # where the request had it, for errors: "messages[0].content[1]"
    # a URL the request named instead: the server fetches it (or refuses it) before a runtime
    # sees the image (app/core/image_urls.py); `data` is empty until then
    url: str | None = None


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: str
    content: str | None  # with IMAGE_MARKER where each of `images` stands
    name: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    reasoning: str | None = None  # an assistant turn's reasoning, for templates that render it
    images: tuple[ChatImage, ...] = ()


def chat_images(messages: list[ChatMessage]) -> list[ChatImage]:
    """Every image of a conversation, in order."""
    return [image for message in messages for image in message.images]


def refuse_images(messages: list[ChatMessage], why: str) -> None:
    """InputError naming the first image, for a runtime that reads none (never a drop)."""
    images = chat_images(messages)
    if images:
        raise InputError(f"this model reads no images ({why})", images[0].param)


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """A conversation to continue, with optional tools and structured output."""

    messages: list[ChatMessage]
    sampling: Sampling = Sampling()
    tools: tuple[Tool, ...] = ()
    tool_choice: str = "auto"  # "auto" | "none" | "required" | the name of one tool
    json_schema: dict[str, Any] | None = None  # constrain the reply; {} means any JSON object
    logprobs: int | None = None  # None: off; k: the chosen token and k alternatives
    continue_final: bool = False  # the last message is the assistant's reply so far: go on
    names: FieldNames = FieldNames()
    # True: any number of calls; False: one at most; None: one forced, any free (llama-server)
    parallel_tool_calls: bool | None = None
    reasoning_effort: str | None = None  # none|minimal|low|medium|high; None: the model's default
    template_kwargs: dict[str, Any] | None = None  # chat_template_kwargs, passed to the template
    max_reasoning_tokens: int | None = None  # past it the reasoning is closed; None: no limit
    truncation: str | None = None  # see TRUNCATIONS


@dataclass(frozen=True, slots=True)
class CompletionRequest:
    prompt: str | tuple[int, ...]  # text, or token ids taken as they are (no BOS added)
    sampling: Sampling = Sampling()
    suffix: str | None = None
    echo: bool = False
    logprobs: int | None = None
    truncation: str | None = None  # see TRUNCATIONS


TRUNCATIONS = ("auto", "disabled")
"""A request's `truncation` (the Responses API's field): "disabled" refuses a prompt longer
than the context; "auto" fits it by the model's `context_overflow` policy, or by dropping the
oldest turns when that policy is "error"; None (not given) follows the model's policy."""


@dataclass(frozen=True, slots=True)
class Truncated:
    """A prompt cut to fit the context: the policy that cut it and the tokens it dropped."""

    policy: str  # "truncate_middle" | "rolling_window"
    dropped: int


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    token: str
    logprob: float | None  # None for the first echoed prompt token, which nothing predicts
    top: tuple[tuple[str, float], ...] = ()
    token_bytes: bytes | None = None  # when `token` cannot show its bytes (None: its UTF-8)
    top_bytes: tuple[bytes, ...] = ()  # the same for each of `top`, when known


@dataclass(frozen=True, slots=True)
class ToolCallPiece:
    """A streamed part of tool call `index`: its id and name first, then arguments text."""

    index: int
    id: str = ""
    name: str = ""
    arguments: str = ""


@dataclass(frozen=True, slots=True)
class Speculation:
    """What speculative decoding did for one generation: draft tokens verified, how many of
    them were kept, and the decode steps that gave its tokens (tokens per step =
    completion_tokens / steps)."""

    drafted: int
    accepted: int
    steps: int


@dataclass(frozen=True, slots=True)
class TextResult:
    """A finished generation."""

    text: str
    finish_reason: str  # "stop" | "length" | "tool_calls"
    prompt_tokens: int
    completion_tokens: int
    tool_calls: tuple[ToolCall, ...] = ()
    logprobs: tuple[TokenLogprob, ...] | None = None
    cached_tokens: int = 0  # of prompt_tokens, found in the KV cache instead of read
    reasoning: str = ""  # what the model reasoned before `text`, its answer
    reasoning_tokens: int = 0  # of completion_tokens, those of the reasoning
    stop_sequence: str | None = None  # the stop string that ended it (finish_reason "stop")
    truncated: Truncated | None = None  # the prompt was cut to fit the context
    speculation: Speculation | None = None  # when it was decoded speculatively


@dataclass(frozen=True, slots=True)
class TextDelta:
    """One streamed piece of a generation; the last one carries finish_reason and usage."""

    text: str
    finish_reason: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()  # whole calls, on the last delta
    logprobs: tuple[TokenLogprob, ...] | None = None
    usage: tuple[int, int] | None = None  # (prompt_tokens, completion_tokens)
    call_pieces: tuple[ToolCallPiece, ...] = ()  # the same calls as they are written
    cached_tokens: int = 0  # with usage: prompt tokens found in the KV cache instead of read
    reasoning: str = ""  # reasoning text, streamed apart from the answer's `text`
    reasoning_tokens: int = 0  # with usage: of the completion tokens, those of the reasoning
    stop_sequence: str | None = None  # on the last delta: the stop string that ended it
    truncated: Truncated | None = None  # on the first delta and the last: the prompt was cut
    speculation: Speculation | None = None  # on the last delta, when decoded speculatively


@dataclass(frozen=True, slots=True)
class Embeddings:
    vectors: np.ndarray  # float32 [N, D]
    tokens: tuple[int, ...]  # per input; a total the upstream gives alone goes on the first

    @property
    def prompt_tokens(self) -> int:
        return sum(self.tokens)

    def split(self, sizes: list[int]) -> list[Embeddings]:
        """Consecutive slices of sizes[i] inputs each: one batch back into its requests."""
        parts, at = [], 0
        for size in sizes:
            parts.append(Embeddings(self.vectors[at : at + size], self.tokens[at : at + size]))
            at += size
        return parts


@dataclass(frozen=True, slots=True)
class Scores:
    """How relevant each document is to a query, in document order."""

    values: np.ndarray  # float32 [N]
    tokens: int  # tokens the model read


@dataclass(frozen=True, slots=True)
class ImageRequest:
    prompt: str
    negative_prompt: str | None = None
    n: int = 1
    width: int | None = None
    height: int | None = None
    steps: int | None = None
    guidance_scale: float | None = None
    seed: int | None = None


@dataclass(frozen=True, slots=True)
class GeneratedImage:
    png: bytes
    seed: int


StepCallback = Callable[[int, int], None]  # called as (step, total_steps) while denoising


@runtime_checkable
class ChatModel(Protocol):
    def chat(self, request: ChatRequest) -> TextResult: ...

    def chat_stream(self, request: ChatRequest) -> Iterator[TextDelta]: ...


@runtime_checkable
class CompletionModel(Protocol):
    def complete(self, request: CompletionRequest) -> TextResult: ...

    def complete_stream(self, request: CompletionRequest) -> Iterator[TextDelta]: ...


# Receives a batched generation's deltas on the engine's thread, then None (the end) or an error
Emit = Callable[["TextDelta | BaseException | None"], None]
Cancel = Callable[[], None]


@runtime_checkable
class BatchedGeneration(Protocol):
    """A runtime whose engine runs several generations at once (continuous batching). Each
    method queues the request and returns a function that cancels it, or returns None when the
    request needs the runtime's one-at-a-time path instead."""

    def chat_batched(self, request: ChatRequest, emit: Emit) -> Cancel | None: ...

    def complete_batched(self, request: CompletionRequest, emit: Emit) -> Cancel | None: ...


@runtime_checkable
class EmbeddingModel(Protocol):
    def embed(self, texts: list[str]) -> Embeddings: ...


@runtime_checkable
class RerankModel(Protocol):
    def rerank(self, query: str, documents: list[str]) -> Scores: ...


@runtime_checkable
class TokenizerModel(Protocol):
    """A model whose tokenizer the server exposes (vLLM's /tokenize and /detokenize)."""

    def max_model_len(self) -> int:
        """The most tokens one request may hold."""
        ...

    def tokenize(self, text: str, add_special: bool) -> list[int]: ...

    def detokenize(self, ids: list[int]) -> str: ...

    def token_strings(self, ids: list[int]) -> list[str]: ...


@runtime_checkable
class ChatTokenizerModel(TokenizerModel, Protocol):
    def tokenize_chat(self, request: ChatRequest) -> list[int]:
        """The prompt tokens `chat(request)` would generate from."""
        ...


@runtime_checkable
class ImageModel(Protocol):
    def generate_images(
        self, request: ImageRequest, on_step: StepCallback | None = None
    ) -> list[GeneratedImage]: ...


@runtime_checkable
class TranscriptionModel(Protocol):
    def transcribe(self, request: TranscriptionRequest) -> Transcription: ...

    def transcribe_stream(self, request: TranscriptionRequest) -> Iterator[TranscriptPart]: ...


class Runtime(abc.ABC):
    """Base for runtimes: load() makes the model usable, unload() frees it. Calls on a loaded
    runtime are blocking and not thread-safe; the registry serialises them per model and runs
    them in worker threads."""

    def __init__(self, path: str, options: Any) -> None:
        self.path = path
        self.options = options

    @property
    def capabilities(self) -> frozenset[Capability]:
        return self.options.capabilities()

    @abc.abstractmethod
    def load(self) -> None: ...

    @abc.abstractmethod
    def unload(self) -> None: ...

    def facts(self) -> ModelFacts:
        """What the loaded model is; a runtime that can tell more says so."""
        return ModelFacts()
