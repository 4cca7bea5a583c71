"""Chat completions as OpenAI answers them, whole and streamed, made from neutral results and read
back into them (a remote upstream's, llama-cpp-python's own).

Nulls that OpenAI's SDK types require stay (`message.refusal`, `choices[].logprobs`); fields
that are absent stay absent (UNSET). Readers accept what other servers leave out or send as null.
"""

from __future__ import annotations

import time
from typing import Literal

import msgspec
from localoip.runtimes import capabilities as base
from localoip.runtimes.wire.openai.common import Usage, new_id, usage
from localoip.runtimes.wire.openai.requests import FunctionCall, MessageToolCall
from msgspec import UNSET, UnsetType


class TopLogprob(msgspec.Struct, kw_only=True):
    token: str
    logprob: float
    bytes: list[int] | None = None


class TokenLogprob(msgspec.Struct, kw_only=True):
    """A chosen token's logprob, its UTF-8 bytes, and the most likely alternatives."""

    token: str
    logprob: float
    bytes: list[int] | None = None
    top_logprobs: list[TopLogprob] | None = None


class ChoiceLogprobs(msgspec.Struct, kw_only=True):
    content: list[TokenLogprob] | None = None
    refusal: list[TokenLogprob] | None = None


class AssistantMessage(msgspec.Struct, kw_only=True):
    """The reply; `reasoning_content` (llama-server's and vLLM's name, absent when the model
    did not reason) holds what it reasoned before `content`. `reasoning` is newer vLLM's name
    for it, read from upstreams and never sent."""

    role: str = "assistant"
    content: str | None = None
    reasoning_content: str | UnsetType | None = UNSET
    refusal: str | None = None
    tool_calls: list[MessageToolCall] | UnsetType | None = UNSET
    reasoning: str | UnsetType | None = UNSET


class Choice(msgspec.Struct, kw_only=True):
    index: int = 0
    message: AssistantMessage
    logprobs: ChoiceLogprobs | None = None
    finish_reason: str | None = None


class ChatCompletion(msgspec.Struct, kw_only=True):
    id: str
    object: str = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage


class FunctionDelta(msgspec.Struct, kw_only=True):
    name: str | UnsetType | None = UNSET
    arguments: str | UnsetType | None = UNSET


class ToolCallDelta(msgspec.Struct, kw_only=True):
    """A streamed tool call: index, id and name first, then pieces of its arguments."""

    index: int = 0
    id: str | UnsetType | None = UNSET
    type: Literal["function"] | UnsetType | None = UNSET
    function: FunctionDelta | None = None


class ChunkDelta(msgspec.Struct, kw_only=True):
    """A streamed piece of the reply; reasoning as `reasoning_content`, as in AssistantMessage."""

    role: str | UnsetType | None = UNSET
    content: str | UnsetType | None = UNSET
    reasoning_content: str | UnsetType | None = UNSET
    tool_calls: list[ToolCallDelta] | UnsetType | None = UNSET
    reasoning: str | UnsetType | None = UNSET


class ChunkChoice(msgspec.Struct, kw_only=True):
    index: int = 0
    delta: ChunkDelta | None = None
    logprobs: ChoiceLogprobs | None = None
    finish_reason: str | None = None


class ChatChunk(msgspec.Struct, kw_only=True):
    """One streamed frame. `usage` is absent unless the client asked for it
    (`stream_options.include_usage`); then it is null on every frame but a last one of its
    own, which has no choices."""

    id: str
    object: str = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | UnsetType | None = UNSET


# -- neutral results -> chat completions ----------------------------------------------------


def choice_logprobs(logprobs: tuple[base.TokenLogprob, ...] | None) -> ChoiceLogprobs | None:
    """A choice's logprobs, each token with its bytes (its UTF-8 unless the runtime said)."""
    if logprobs is None:
        return None
    return ChoiceLogprobs(
        content=[
            TokenLogprob(
                token=lp.token,
                logprob=lp.logprob,  # never None in a chat: every token was predicted
                bytes=list(lp.token.encode() if lp.token_bytes is None else lp.token_bytes),
                top_logprobs=[
                    TopLogprob(token=t, logprob=p, bytes=list(b))
                    for (t, p), b in zip(
                        lp.top, lp.top_bytes or [t.encode() for t, _ in lp.top], strict=True
                    )
                ],
            )
            for lp in logprobs
        ]
    )


def tool_calls(calls: tuple[base.ToolCall, ...]) -> list[MessageToolCall]:
    return [
        MessageToolCall(id=c.id, function=FunctionCall(name=c.name, arguments=c.arguments))
        for c in calls
    ]


def chat_completion(
    model: str,
    results: list[base.TextResult],
    cid: str | None = None,
    created: int | None = None,
) -> ChatCompletion:
    """The completion of n choices; the prompt counts once, and its cached tokens are the
    first choice's. A stream's own id and time are given as `cid` and `created`."""
    choices = []
    for i, r in enumerate(results):
        message = AssistantMessage(content=None if r.tool_calls and not r.text else r.text)
        if r.reasoning:
            message.reasoning_content = r.reasoning
        if r.tool_calls:
            message.tool_calls = tool_calls(r.tool_calls)
        choices.append(
            Choice(
                index=i,
                message=message,
                logprobs=choice_logprobs(r.logprobs),
                finish_reason=r.finish_reason,
            )
        )
    return ChatCompletion(
        id=cid or new_id("chatcmpl"),
        created=int(time.time()) if created is None else created,
        model=model,
        choices=choices,
        usage=usage(
            results[0].prompt_tokens,
            sum(r.completion_tokens for r in results),
            results[0].cached_tokens,
            sum(r.reasoning_tokens for r in results),
        ),
    )


def _pieces(pieces: tuple[base.ToolCallPiece, ...]) -> list[ToolCallDelta]:
    """Streamed tool-call pieces as OpenAI sends them: index, id and name, then arguments."""
    return [
        ToolCallDelta(
            index=p.index,
            id=p.id,
            type="function",
            function=FunctionDelta(name=p.name, arguments=p.arguments),
        )
        if p.id
        else ToolCallDelta(index=p.index, function=FunctionDelta(arguments=p.arguments))
        for p in pieces
    ]


def _whole(calls: tuple[base.ToolCall, ...]) -> list[ToolCallDelta]:
    return [
        ToolCallDelta(
            index=i,
            id=c.id,
            type="function",
            function=FunctionDelta(name=c.name, arguments=c.arguments),
        )
        for i, c in enumerate(calls)
    ]


def chunk_choice(
    index: int, delta: base.TextDelta, first: bool, calls_streamed: bool = False
) -> ChunkChoice:
    """A streamed choice; the first delta of each choice also carries the role. Tool calls go
    out as their pieces when the runtime streamed them (`calls_streamed`), else whole;
    reasoning as `reasoning_content`."""
    body = ChunkDelta(role="assistant", content=delta.text) if first else ChunkDelta()
    if delta.text:
        body.content = delta.text
    if delta.reasoning:
        body.reasoning_content = delta.reasoning
    if delta.call_pieces:
        body.tool_calls = _pieces(delta.call_pieces)
    elif delta.tool_calls and not calls_streamed:
        body.tool_calls = _whole(delta.tool_calls)
    return ChunkChoice(
        index=index,
        delta=body,
        logprobs=choice_logprobs(delta.logprobs),
        finish_reason=delta.finish_reason,
    )


# -- chat completions -> neutral results ----------------------------------------------------


def token_logprobs(data: ChoiceLogprobs | None) -> tuple[base.TokenLogprob, ...] | None:
    """A choice's logprobs as neutral TokenLogprobs."""
    if data is None or data.content is None:
        return None
    return tuple(
        base.TokenLogprob(
            item.token, item.logprob, tuple((t.token, t.logprob) for t in item.top_logprobs or ())
        )
        for item in data.content
    )


def chat_result(out: ChatCompletion) -> base.TextResult:
    """The first choice of a chat completion, with its reasoning, tool calls and logprobs."""
    choice = out.choices[0]
    message = choice.message
    return base.TextResult(
        text=message.content or "",
        finish_reason=choice.finish_reason or "stop",
        prompt_tokens=out.usage.prompt_tokens,
        completion_tokens=out.usage.completion_tokens,
        tool_calls=tuple(
            base.ToolCall(c.id, c.function.name, c.function.arguments)
            for c in message.tool_calls or ()
        ),
        logprobs=token_logprobs(choice.logprobs),
        reasoning=message.reasoning_content or message.reasoning or "",
        reasoning_tokens=out.usage.reasoning_tokens,
    )


def chunk_delta(choice: ChunkChoice) -> base.TextDelta:
    """A streamed choice as a delta; its tool calls as pieces, which a Fold puts together."""
    delta = choice.delta or ChunkDelta()
    pieces = []
    for call in delta.tool_calls or ():
        function = call.function or FunctionDelta()
        pieces.append(
            base.ToolCallPiece(
                call.index, call.id or "", function.name or "", function.arguments or ""
            )
        )
    return base.TextDelta(
        delta.content or "",
        choice.finish_reason,
        logprobs=token_logprobs(choice.logprobs),
        call_pieces=tuple(pieces),
        reasoning=delta.reasoning_content or delta.reasoning or "",
    )
