"""What OpenAI's answers share: ids and token usage."""

from __future__ import annotations

import uuid

import msgspec
from localoip.runtimes.capabilities import TextResult


def new_id(prefix: str) -> str:
    """A fresh id in OpenAI's style for chat and completions: `chatcmpl-<32 hex digits>`."""
    return f"{prefix}-{uuid.uuid4().hex}"


class PromptTokensDetails(msgspec.Struct, kw_only=True):
    cached_tokens: int = 0


class CompletionTokensDetails(msgspec.Struct, kw_only=True):
    reasoning_tokens: int = 0


class Usage(msgspec.Struct, kw_only=True):
    """Tokens a chat or completion used; `prompt_tokens_details.cached_tokens` of the prompt
    came from the KV cache (prefix reuse), `completion_tokens_details.reasoning_tokens` of the
    completion were reasoning. Other servers may leave out all but the counts."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int = 0
    prompt_tokens_details: PromptTokensDetails | None = None
    completion_tokens_details: CompletionTokensDetails | None = None

    @property
    def reasoning_tokens(self) -> int:
        details = self.completion_tokens_details
        return 0 if details is None else details.reasoning_tokens


def usage(prompt: int, completion: int, cached: int = 0, reasoning: int = 0) -> Usage:
    """OpenAI's usage object, with its total, the cached prompt tokens and the reasoning
    tokens of the completion."""
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        prompt_tokens_details=PromptTokensDetails(cached_tokens=cached),
        completion_tokens_details=CompletionTokensDetails(reasoning_tokens=reasoning),
    )


def streamed_usage(results: list[TextResult]) -> Usage:
    """A stream's usage over its choices, sent last: the prompt counts once (as the last
    choice counted it), completions and their reasoning add up, and the cached prompt tokens
    are the first's."""
    return usage(
        results[-1].prompt_tokens,
        sum(r.completion_tokens for r in results),
        results[0].cached_tokens,
        sum(r.reasoning_tokens for r in results),
    )
