"""Responses API request bodies as msgspec Structs; fields the server does not use are ignored.

Input items stay plain dicts here: their shapes are told apart by `type` (or its absence), and
app/api/openai/responses/input.py checks each one, naming the offending item as `param`.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from localoip.runtimes.wire.openai.requests import Metadata, PositiveInt, Probability, Temperature


class TextFormat(msgspec.Struct, kw_only=True):
    type: Literal["text", "json_object", "json_schema"]
    name: str | None = None
    schema: dict[str, Any] | None = None
    description: str | None = None
    strict: bool | None = None


class TextConfig(msgspec.Struct, kw_only=True):
    format: TextFormat | None = None
    verbosity: Literal["low", "medium", "high"] | None = None


class FunctionTool(msgspec.Struct, kw_only=True):
    type: str
    name: str | None = None
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class NamedToolChoice(msgspec.Struct, kw_only=True):
    type: str
    name: str | None = None


class ReasoningConfig(msgspec.Struct, kw_only=True):
    """How a reasoning model should reason: `effort` is checked as every protocol's is
    (wire/controls.reasoning_fields); a summary is accepted, and the reasoning item carries the
    whole reasoning text instead."""

    effort: Any = None
    summary: Literal["auto", "concise", "detailed"] | None = None


class ResponseInput(msgspec.Struct, kw_only=True):
    """What the model sees: shared by POST /responses and POST /responses/input_tokens."""

    model: str | None = None
    input: str | list[dict[str, Any]] | None = None
    instructions: str | None = None
    previous_response_id: str | None = None
    text: TextConfig | None = None
    tools: list[FunctionTool] | None = None
    tool_choice: Literal["auto", "none", "required"] | NamedToolChoice | None = None
    parallel_tool_calls: bool | None = None
    reasoning: ReasoningConfig | None = None
    chat_template_kwargs: Any = None  # the chat completions extensions, taken here too
    max_reasoning_tokens: Any = None
    truncation: Literal["auto", "disabled"] | None = None  # None: the model's context_overflow
    conversation: Any = None  # not supported: refused when given
    prompt: Any = None  # not supported: refused when given


class CreateResponse(ResponseInput, kw_only=True):
    max_output_tokens: PositiveInt | None = None
    temperature: Temperature | None = None
    top_p: Probability | None = None
    deterministic: bool | None = None  # the chat completions extension, taken here too
    stream: bool | None = None
    store: bool | None = None
    background: bool | None = None
    metadata: Metadata | None = None
    user: str | None = None


class CompactRequest(msgspec.Struct, kw_only=True):
    """POST /responses/compact: the conversation to compact, given and/or stored."""

    model: str | None = None
    input: str | list[dict[str, Any]] | None = None
    instructions: str | None = None
    previous_response_id: str | None = None
