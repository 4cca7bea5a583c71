"""The reply of `POST /v1/messages` as Anthropic gives it (a `message` object), made from a
neutral TextResult; and the other objects of the API: token counts, models and errors.

Fields are those of the `anthropic` SDK's `types/message.py`, `usage.py`,
`message_tokens_count.py`, `model_info.py` and the error shape of docs.claude.com/en/api/errors.
"""

from __future__ import annotations

import uuid

import msgspec
from localoip.runtimes import capabilities as base
from localoip.runtimes.wire.anthropic.blocks import ReplyBlock, Text, Thinking, ToolUse


def new_id(prefix: str = "msg") -> str:
    """A fresh id in Anthropic's style: `msg_<24 hex digits>`, `toolu_...`."""
    return f"{prefix}_{uuid.uuid4().hex[:24]}"


class Usage(msgspec.Struct, kw_only=True):
    """Tokens a message used. The prompt is `input_tokens` read afresh plus
    `cache_read_input_tokens` found in the KV cache (a reused prefix); nothing is written to a
    cache by request, so `cache_creation_input_tokens` is 0."""

    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0


def usage(result: base.TextResult) -> Usage:
    """A result's usage: its prompt split into tokens read and tokens found in the cache."""
    return Usage(
        input_tokens=result.prompt_tokens - result.cached_tokens,
        output_tokens=result.completion_tokens,
        cache_read_input_tokens=result.cached_tokens,
    )


class Message(msgspec.Struct, kw_only=True):
    """A reply. `stop_reason` is null only in a stream's `message_start`; `stop_sequence` is
    the stop string that ended it, if one did."""

    id: str
    type: str = "message"
    role: str = "assistant"
    content: list[ReplyBlock]
    model: str
    stop_reason: str | None = None
    stop_sequence: str | None = None
    usage: Usage


STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}
"""Anthropic's stop_reason for each finish_reason; a stop string's is `stop_sequence`."""


def stop_reason(result: base.TextResult) -> str:
    """Why the reply ended: end_turn, max_tokens, stop_sequence or tool_use."""
    if result.finish_reason == "stop" and result.stop_sequence is not None:
        return "stop_sequence"
    return STOP_REASONS.get(result.finish_reason, "end_turn")


def reply_blocks(result: base.TextResult, show_thinking: bool = True) -> list[ReplyBlock]:
    """The reply's blocks: its reasoning (without its text unless `show_thinking`), its
    answer and its calls, each only when there is one."""
    blocks: list[ReplyBlock] = []
    if result.reasoning:
        blocks.append(Thinking(thinking=result.reasoning if show_thinking else ""))
    if result.text:
        blocks.append(Text(text=result.text))
    blocks += [ToolUse(id=c.id, name=c.name, input=c.arguments_object()) for c in result.tool_calls]
    return blocks


def message(model: str, result: base.TextResult, show_thinking: bool = True) -> Message:
    """The whole reply as a message (its thinking without its text unless `show_thinking`)."""
    return Message(
        id=new_id(),
        content=reply_blocks(result, show_thinking),
        model=model,
        stop_reason=stop_reason(result),
        stop_sequence=result.stop_sequence,
        usage=usage(result),
    )


class TokenCount(msgspec.Struct, kw_only=True):
    """`/v1/messages/count_tokens`: the prompt's tokens, as a reply's usage counts them."""

    input_tokens: int


class ModelInfo(msgspec.Struct, kw_only=True):
    """A model as `/v1/models` lists it for Anthropic's clients; `max_input_tokens` is the
    context in use (None before a model loads, when its configuration does not say)."""

    id: str
    type: str = "model"
    display_name: str
    created_at: str  # RFC 3339
    max_input_tokens: int | None = None


class ModelPage(msgspec.Struct, kw_only=True):
    """A page of models: `first_id`/`last_id` bound it; `has_more` when more follow."""

    data: list[ModelInfo]
    has_more: bool
    first_id: str | None
    last_id: str | None


class ErrorDetail(msgspec.Struct, kw_only=True):
    type: str  # invalid_request_error, authentication_error, not_found_error, ...
    message: str


class ErrorResponse(msgspec.Struct, kw_only=True):
    """Anthropic's error shape: `{"type": "error", "error": {"type", "message"}}`, as a body
    and as a stream's `error` event."""

    type: str = "error"
    error: ErrorDetail
