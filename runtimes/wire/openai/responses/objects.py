"""Responses API objects: a response, from its start to its end, and the answers of its other
routes (input token counts, compactions, deletions)."""

from __future__ import annotations

import time
from typing import Any

import msgspec
from localoip.runtimes.wire.openai.responses.items import Item, new_id
from localoip.runtimes.wire.openai.responses.requests import (
    CreateResponse,
    FunctionTool,
    NamedToolChoice,
)
from msgspec import UNSET, UnsetType

TERMINAL = ("completed", "incomplete", "failed", "cancelled")
"""The statuses of a response that has finished."""


class InputTokensDetails(msgspec.Struct, kw_only=True):
    cached_tokens: int = 0
    cache_write_tokens: int = 0


class OutputTokensDetails(msgspec.Struct, kw_only=True):
    reasoning_tokens: int = 0


class ResponseUsage(msgspec.Struct, kw_only=True):
    input_tokens: int
    input_tokens_details: InputTokensDetails
    output_tokens: int
    output_tokens_details: OutputTokensDetails
    total_tokens: int


def usage(
    input_tokens: int, output_tokens: int, cached_tokens: int = 0, reasoning_tokens: int = 0
) -> ResponseUsage:
    """A response's usage: `reasoning_tokens` of the output tokens were reasoning."""
    return ResponseUsage(
        input_tokens=input_tokens,
        input_tokens_details=InputTokensDetails(cached_tokens=cached_tokens),
        output_tokens=output_tokens,
        output_tokens_details=OutputTokensDetails(reasoning_tokens=reasoning_tokens),
        total_tokens=input_tokens + output_tokens,
    )


class ResponseError(msgspec.Struct, kw_only=True):
    code: str
    message: str
    param: str | None = None
    type: str = "server_error"


class IncompleteDetails(msgspec.Struct, kw_only=True):
    reason: str


class TextFormat(msgspec.Struct, kw_only=True):
    """The format a response was asked for: `{"type": "text"}`, or a named json_schema.
    OpenAI's schema lets a description be absent, but not null."""

    type: str
    name: str | UnsetType | None = UNSET
    schema: dict[str, Any] | UnsetType | None = UNSET
    strict: bool | UnsetType | None = UNSET
    description: str | UnsetType = UNSET


class TextSettings(msgspec.Struct, kw_only=True):
    format: TextFormat


class ReasoningSettings(msgspec.Struct, kw_only=True):
    """The reasoning a response was asked for (null: the model's default)."""

    effort: str | None = None
    summary: str | None = None


class Response(msgspec.Struct, kw_only=True):
    """A response, with the settings it was asked for. The schema lets `usage` and `user` be
    absent, but not null: usage comes once the response has finished, and user only when
    given. Changes make a new Response (msgspec.structs.replace): events hold the old ones."""

    id: str
    object: str = "response"
    created_at: int
    status: str
    background: bool
    completed_at: int | None = None
    error: ResponseError | None = None
    incomplete_details: IncompleteDetails | None = None
    instructions: str | None = None
    max_output_tokens: int | None = None
    metadata: dict[str, str]
    model: str
    output: list[Item]
    parallel_tool_calls: bool
    previous_response_id: str | None = None
    reasoning: ReasoningSettings | None = None
    store: bool
    temperature: float | None = None
    text: TextSettings
    tool_choice: str | NamedToolChoice
    tools: list[FunctionTool]
    top_p: float | None = None
    truncation: str = "disabled"
    user: str | UnsetType = UNSET
    usage: ResponseUsage | UnsetType = UNSET


def _text_settings(req: CreateResponse) -> TextSettings:
    fmt = req.text.format if req.text else None
    if fmt is None:
        return TextSettings(format=TextFormat(type="text"))
    if fmt.type != "json_schema":
        return TextSettings(format=TextFormat(type=fmt.type))
    described = fmt.description if fmt.description is not None else UNSET
    return TextSettings(
        format=TextFormat(
            type="json_schema",
            name=fmt.name,
            schema=fmt.schema,
            strict=fmt.strict,
            description=described,
        )
    )


def new_response(req: CreateResponse, model: str, status: str) -> Response:
    """A response as it starts: the request's settings, no output yet."""
    choice = req.tool_choice
    if isinstance(choice, NamedToolChoice):
        choice = NamedToolChoice(type="function", name=choice.name)
    return Response(
        id=new_id("resp"),
        created_at=int(time.time()),
        status=status,
        background=bool(req.background),
        instructions=req.instructions,
        max_output_tokens=req.max_output_tokens,
        metadata=req.metadata or {},
        model=model,
        output=[],
        parallel_tool_calls=req.parallel_tool_calls is not False,
        previous_response_id=req.previous_response_id,
        reasoning=None
        if req.reasoning is None
        else ReasoningSettings(effort=req.reasoning.effort, summary=req.reasoning.summary),
        store=req.store is not False,
        temperature=req.temperature,
        text=_text_settings(req),
        tool_choice=choice or "auto",
        tools=[
            FunctionTool(
                type="function",
                name=t.name,
                description=t.description,
                parameters=t.parameters,
                strict=t.strict,
            )
            for t in req.tools or ()
        ],
        top_p=req.top_p,
        truncation=req.truncation or "disabled",
        user=UNSET if req.user is None else req.user,
    )


class InputTokens(msgspec.Struct, kw_only=True):
    object: str = "response.input_tokens"
    input_tokens: int


class Compaction(msgspec.Struct, kw_only=True):
    """What POST /responses/compact answers: the items that replace the conversation."""

    id: str
    object: str = "response.compaction"
    created_at: int
    output: list[Item]
    usage: ResponseUsage
