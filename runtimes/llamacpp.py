"""llama.cpp runtime: GGUF chat and completion (streaming), or mean-pooled embeddings."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import llama_cpp
import numpy as np
from localoip.runtimes.base import (
    ChatMessage,
    Embeddings,
    Runtime,
    Sampling,
    TextDelta,
    TextResult,
)
from localoip.runtimes.options import LlamaCppOptions


def _sampling_kwargs(sampling: Sampling) -> dict[str, Any]:
    """llama-cpp-python keyword arguments for the settings that were given."""
    kwargs: dict[str, Any] = {
        "max_tokens": sampling.max_tokens,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "top_k": sampling.top_k,
        "seed": sampling.seed,
        "presence_penalty": sampling.presence_penalty,
        "frequency_penalty": sampling.frequency_penalty,
        "repeat_penalty": sampling.repeat_penalty,
    }
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    if sampling.stop:
        kwargs["stop"] = list(sampling.stop)
    return kwargs


class LlamaCppRuntime(Runtime):
    options: LlamaCppOptions

    def __init__(self, path: str, options: LlamaCppOptions) -> None:
        super().__init__(path, options)
        self._llm: llama_cpp.Llama | None = None

    @property
    def llm(self) -> llama_cpp.Llama:
        if self._llm is None:
            raise RuntimeError("model is not loaded")
        return self._llm

    def load(self) -> None:
        opts = self.options
        if os.path.isdir(self.path):
            ggufs = sorted(f for f in os.listdir(self.path) if f.endswith(".gguf"))
            if len(ggufs) != 1:
                raise FileNotFoundError(f"expected one .gguf file in {self.path}, found {ggufs}")
            self.path = os.path.join(self.path, ggufs[0])
        extra: dict[str, Any] = {}
        if opts.embedding:
            extra = {"embedding": True, "pooling_type": llama_cpp.LLAMA_POOLING_TYPE_MEAN}
        self._llm = llama_cpp.Llama(
            model_path=self.path,
            n_ctx=opts.n_ctx,
            n_batch=opts.n_batch,
            n_gpu_layers=opts.n_gpu_layers,
            n_threads=opts.threads,
            chat_format=opts.chat_format,
            seed=opts.seed,
            verbose=False,
            **extra,
        )
        if opts.warmup:
            # The first decode after load costs about a second; pay it here, not in a request.
            if opts.embedding:
                self._llm.embed("warm up")
            else:
                self._llm.create_completion("Hi", max_tokens=1, temperature=0.0)

    def unload(self) -> None:
        if self._llm is not None:
            self._llm.close()
            self._llm = None

    def count_tokens(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode(), add_bos=False, special=False))

    def chat(self, messages: list[ChatMessage], sampling: Sampling) -> TextResult:
        out = self.llm.create_chat_completion(
            messages=[{"role": m.role, "content": m.content} for m in messages],
            **_sampling_kwargs(sampling),
        )
        choice = out["choices"][0]
        return TextResult(
            text=choice["message"].get("content") or "",
            finish_reason=choice.get("finish_reason") or "stop",
            prompt_tokens=out["usage"]["prompt_tokens"],
            completion_tokens=out["usage"]["completion_tokens"],
        )

    def chat_stream(self, messages: list[ChatMessage], sampling: Sampling) -> Iterator[TextDelta]:
        chunks = self.llm.create_chat_completion(
            messages=[{"role": m.role, "content": m.content} for m in messages],
            stream=True,
            **_sampling_kwargs(sampling),
        )
        for chunk in chunks:
            choice = chunk["choices"][0]
            text = choice["delta"].get("content") or ""
            if text or choice.get("finish_reason"):
                yield TextDelta(text=text, finish_reason=choice.get("finish_reason"))

    def complete(self, prompt: str, sampling: Sampling) -> TextResult:
        out = self.llm.create_completion(prompt, **_sampling_kwargs(sampling))
        choice = out["choices"][0]
        return TextResult(
            text=choice["text"],
            finish_reason=choice.get("finish_reason") or "stop",
            prompt_tokens=out["usage"]["prompt_tokens"],
            completion_tokens=out["usage"]["completion_tokens"],
        )

    def complete_stream(self, prompt: str, sampling: Sampling) -> Iterator[TextDelta]:
        for chunk in self.llm.create_completion(prompt, stream=True, **_sampling_kwargs(sampling)):
            choice = chunk["choices"][0]
            if choice["text"] or choice.get("finish_reason"):
                yield TextDelta(text=choice["text"], finish_reason=choice.get("finish_reason"))

    def embed(self, texts: list[str]) -> Embeddings:
        vectors = np.asarray(self.llm.embed(texts, normalize=True), dtype=np.float32)
        return Embeddings(vectors=vectors, prompt_tokens=sum(map(self.count_tokens, texts)))
