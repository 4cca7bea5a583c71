"""Runtime capabilities and the neutral request/result types they speak (no HTTP here)."""

from __future__ import annotations

import abc
import enum
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np


class Capability(enum.StrEnum):
    """What a loaded model can do; adapters route on these."""

    CHAT = "chat"
    COMPLETION = "completion"
    EMBED = "embed"
    IMAGE = "image"


@dataclass(frozen=True, slots=True)
class Sampling:
    """Text-generation settings; None means the runtime's own default."""

    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    repeat_penalty: float | None = None


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: str
    content: str


@dataclass(frozen=True, slots=True)
class TextResult:
    """A finished generation."""

    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True, slots=True)
class TextDelta:
    """One streamed piece of a generation; the last one carries finish_reason."""

    text: str
    finish_reason: str | None = None


@dataclass(frozen=True, slots=True)
class Embeddings:
    vectors: np.ndarray  # float32 [N, D]
    prompt_tokens: int


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


StepCallback = Callable[[int, int], None]
"""Called as (step, total_steps) while an image is being denoised."""


@runtime_checkable
class ChatModel(Protocol):
    def chat(self, messages: list[ChatMessage], sampling: Sampling) -> TextResult: ...

    def chat_stream(
        self, messages: list[ChatMessage], sampling: Sampling
    ) -> Iterator[TextDelta]: ...


@runtime_checkable
class CompletionModel(Protocol):
    def complete(self, prompt: str, sampling: Sampling) -> TextResult: ...

    def complete_stream(self, prompt: str, sampling: Sampling) -> Iterator[TextDelta]: ...


@runtime_checkable
class EmbeddingModel(Protocol):
    def embed(self, texts: list[str]) -> Embeddings: ...


@runtime_checkable
class ImageModel(Protocol):
    def generate_images(
        self, request: ImageRequest, on_step: StepCallback | None = None
    ) -> list[GeneratedImage]: ...


class Runtime(abc.ABC):
    """Base for runtimes: load() makes the model usable, unload() frees it.

    Calls on a loaded runtime are blocking and not thread-safe; the registry
    serialises them per model and runs them in worker threads.
    """

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
