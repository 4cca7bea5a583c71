"""Legacy completions (/v1/completions) as OpenAI answers them, whole and streamed, made from
neutral results and read back into them; with their own logprobs shape (tokens, offsets)."""

from __future__ import annotations

import time

import msgspec
from localoip.runtimes import capabilities as base
from localoip.runtimes.wire.openai.common import Usage, new_id, usage
from msgspec import UNSET, UnsetType


class CompletionLogprobs(msgspec.Struct, kw_only=True):
    """Token by token: the text, its logprob (None for a first echoed prompt token), the most
    likely alternatives, and where the token starts in the choice's text."""

    tokens: list[str] | None = None
    token_logprobs: list[float | None] | None = None
    top_logprobs: list[dict[str, float] | None] | None = None
    text_offset: list[int] | None = None


class CompletionChoice(msgspec.Struct, kw_only=True):
    index: int = 0
    text: str = ""
    logprobs: CompletionLogprobs | None = None
    finish_reason: str | None = None


class Completion(msgspec.Struct, kw_only=True):
    id: str
    object: str = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage


class CompletionChunk(msgspec.Struct, kw_only=True):
    """One streamed frame; `usage` as in a chat chunk (absent, null, then a last frame)."""

    id: str
    object: str = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage | UnsetType | None = UNSET


# -- neutral results -> completions ---------------------------------------------------------


def completion_logprobs(
    logprobs: tuple[base.TokenLogprob, ...] | None, offset: int = 0
) -> CompletionLogprobs | None:
    """Logprobs of text that starts at character `offset` of the choice's text."""
    if logprobs is None:
        return None
    offsets = []
    for lp in logprobs:
        offsets.append(offset)
        offset += len(lp.token)
    return CompletionLogprobs(
        tokens=[lp.token for lp in logprobs],
        token_logprobs=[lp.logprob for lp in logprobs],
        top_logprobs=[dict(lp.top) if lp.top else None for lp in logprobs],
        text_offset=offsets,
    )


def completion(model: str, results: list[base.TextResult]) -> Completion:
    """One choice per result; usage adds up over them all."""
    return Completion(
        id=new_id("cmpl"),
        created=int(time.time()),
        model=model,
        choices=[
            CompletionChoice(
                index=i,
                text=r.text,
                logprobs=completion_logprobs(r.logprobs),
                finish_reason=r.finish_reason,
            )
            for i, r in enumerate(results)
        ],
        usage=usage(
            sum(r.prompt_tokens for r in results),
            sum(r.completion_tokens for r in results),
            sum(r.cached_tokens for r in results),
        ),
    )


def chunk_choice(index: int, delta: base.TextDelta, offset: int) -> CompletionChoice:
    """A streamed choice whose text so far is `offset` characters long."""
    return CompletionChoice(
        index=index,
        text=delta.text,
        logprobs=completion_logprobs(delta.logprobs, offset),
        finish_reason=delta.finish_reason,
    )


# -- completions -> neutral results ---------------------------------------------------------


def token_logprobs(data: CompletionLogprobs | None) -> tuple[base.TokenLogprob, ...] | None:
    """A choice's legacy logprobs as neutral TokenLogprobs."""
    if data is None or data.tokens is None:
        return None
    count = len(data.tokens)
    return tuple(
        base.TokenLogprob(token, logprob, tuple((top or {}).items()))
        for token, logprob, top in zip(
            data.tokens,
            data.token_logprobs or [None] * count,
            data.top_logprobs or [None] * count,
            strict=False,
        )
    )


def completion_result(out: Completion) -> base.TextResult:
    """The first choice of a completion, with its logprobs."""
    choice = out.choices[0]
    return base.TextResult(
        text=choice.text,
        finish_reason=choice.finish_reason or "stop",
        prompt_tokens=out.usage.prompt_tokens,
        completion_tokens=out.usage.completion_tokens,
        logprobs=token_logprobs(choice.logprobs),
    )


def chunk_delta(choice: CompletionChoice) -> base.TextDelta:
    """A streamed choice as a delta."""
    return base.TextDelta(
        choice.text, choice.finish_reason, logprobs=token_logprobs(choice.logprobs)
    )
