"""Generation through llama-cpp-python's own `create_chat_completion`, for what the serial path
does not do: chat handlers that do more than render a prompt. No exact limits or logprobs of
our own here; context overflows become 400s."""

from __future__ import annotations

import mmap
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import msgspec
import numpy as np
from llama_cpp import Llama
from localoip.runtimes.capabilities import (
    ChatRequest,
    InputError,
    TextDelta,
)
from localoip.runtimes.wire.openai import chat

A = TypeVar("A")


@contextmanager
def client_errors() -> Iterator[None]:
    """llama-cpp-python's "exceed context window" ValueError as a 400 (InputError)."""
    try:
        yield
    except ValueError as exc:
        if "exceed context window" in str(exc):
            raise InputError(str(exc), "messages", "context_length_exceeded") from None
        raise


@contextmanager
def logits_for(llm: Llama, logprobs: int | None) -> Iterator[None]:
    """Keep every position's logits for one request, so logprobs can be reported.

    llama-cpp-python reports logprobs only for a model created with logits_all,
    whose score buffer (n_ctx x n_vocab floats) would be resident all the time.
    Here it exists only during a logprobs request, and untouched rows cost no memory.
    """
    if logprobs is None:
        yield
        return
    saved = llm._logits_all, llm.scores
    llm._logits_all = True
    llm.scores = unreserved_zeros(llm.n_ctx(), llm.n_vocab())
    llm.reset()  # cached prompt positions have no logits; evaluate the prompt afresh
    try:
        yield
    finally:
        llm._logits_all, llm.scores = saved
        llm.reset()


MAP_NORESERVE = 0x4000
"""Linux's mmap flag (Python 3.11's mmap does not name it): reserve no swap for the mapping."""


def unreserved_zeros(rows: int, columns: int) -> np.ndarray:
    """A float32 array of zeros, (rows, columns), whose pages exist only once written.

    llama-cpp-python's score buffer is n_ctx x n_vocab: 32 GiB for gemma3 (262,144 tokens)
    at a 32,768-token context. numpy's zeros asks for all of it at once, which Linux's
    heuristic overcommit refuses on a smaller machine (MemoryError), although a request writes
    only its own rows. On Linux the buffer is an anonymous mapping that reserves nothing;
    elsewhere it is numpy's zeros.
    """
    if sys.platform != "linux":
        return np.zeros((rows, columns), dtype=np.single)
    size = max(rows * columns * 4, 1)
    flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | MAP_NORESERVE
    pages = mmap.mmap(-1, size, flags=flags)
    return np.frombuffer(pages, dtype=np.single, count=rows * columns).reshape(rows, columns)


def _read(answer: dict[str, Any], into: type[A]) -> A:
    """One of llama-cpp-python's OpenAI-shaped answers read as a wire Struct; its logprobs are
    numpy floats, which only JSON turns into plain numbers."""
    return msgspec.json.decode(msgspec.json.encode(answer, enc_hook=_number), type=into)


def _number(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _deltas(llm: Llama, deltas: Iterator[TextDelta]) -> Iterator[TextDelta]:
    """The deltas llama-cpp-python's chunks read as, those with text or a finish_reason,
    usage on the last one: prompt tokens are the context length when the first token
    arrives, and each streamed piece is one generated token."""
    prompt_tokens: int | None = None
    generated = 0
    for delta in deltas:
        if prompt_tokens is None:
            prompt_tokens = llm.n_tokens
        finish = delta.finish_reason
        if delta.text:
            generated += 1
        if delta.text or finish:
            yield TextDelta(
                delta.text,
                finish,
                logprobs=delta.logprobs,
                usage=(prompt_tokens or 0, generated) if finish else None,
            )


def chat_stream(llm: Llama, kwargs: dict[str, Any], request: ChatRequest) -> Iterator[TextDelta]:
    """A chat's deltas from `llm.create_chat_completion(**kwargs)`; a request to continue a
    reply is an InputError, as the handler renders the messages itself."""
    if request.continue_final:
        raise InputError("this model's chat handler cannot continue a reply", "messages")
    with client_errors(), logits_for(llm, request.logprobs):
        if request.logprobs is not None:
            kwargs |= {"logprobs": True, "top_logprobs": request.logprobs}
        chunks = llm.create_chat_completion(stream=True, **kwargs)
        yield from _deltas(
            llm, (chat.chunk_delta(_read(c, chat.ChatChunk).choices[0]) for c in chunks)
        )
