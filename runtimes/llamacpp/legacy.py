"""llama-cpp-python's own generation (create_chat_completion, create_completion), read through
the OpenAI wire Structs it answers in: for chat handlers that do more than render a prompt, and
for echo with logprobs, whose prompt logprobs only llama-cpp-python computes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import llama_cpp
import msgspec
from localoip.runtimes.capabilities import TextDelta, TextResult, TokenLogprob
from localoip.runtimes.wire.openai import chat, completions


def top_k(
    logprobs: tuple[TokenLogprob, ...] | None, k: int | None
) -> tuple[TokenLogprob, ...] | None:
    """llama-cpp-python's logprobs with at most k alternatives: it appends the sampled token
    to the k most likely when it is not among them, so a (k + 1)th entry is that one."""
    if logprobs is None or k is None:
        return logprobs
    return tuple(replace(lp, top=lp.top[:k]) for lp in logprobs)


def chat_stream(llm: llama_cpp.Llama, kwargs: dict[str, Any]) -> Iterator[TextDelta]:
    """A streamed chat through the model's own chat handler."""
    chunks = llm.create_chat_completion(stream=True, **kwargs)
    yield from _counted(
        llm, (chat.chunk_delta(msgspec.convert(c, chat.ChatChunk).choices[0]) for c in chunks)
    )


def completion(llm: llama_cpp.Llama, kwargs: dict[str, Any], k: int | None) -> TextResult:
    """A whole completion, with at most k alternatives per token."""
    out = msgspec.convert(llm.create_completion(**kwargs), completions.Completion)
    result = completions.completion_result(out)
    return replace(result, logprobs=top_k(result.logprobs, k))


def completion_stream(
    llm: llama_cpp.Llama, kwargs: dict[str, Any], k: int | None
) -> Iterator[TextDelta]:
    """A streamed completion, with at most k alternatives per token."""
    chunks = llm.create_completion(stream=True, **kwargs)
    choices = (
        completions.chunk_delta(msgspec.convert(c, completions.CompletionChunk).choices[0])
        for c in chunks
    )
    for delta in _counted(llm, choices):
        yield replace(delta, logprobs=top_k(delta.logprobs, k))


def _counted(llm: llama_cpp.Llama, deltas: Iterator[TextDelta]) -> Iterator[TextDelta]:
    """The deltas with text or a finish_reason, usage on the last one: prompt tokens are the
    context length when the first token arrives, and each streamed piece is one token."""
    prompt_tokens: int | None = None
    generated = 0
    for delta in deltas:
        if prompt_tokens is None:
            prompt_tokens = llm.n_tokens
        if delta.text:
            generated += 1
        if delta.text or delta.finish_reason:
            usage = (prompt_tokens or 0, generated) if delta.finish_reason else None
            yield TextDelta(delta.text, delta.finish_reason, logprobs=delta.logprobs, usage=usage)
