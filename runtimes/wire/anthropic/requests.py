"""Anthropic request bodies (`POST /v1/messages` and `/v1/messages/count_tokens`) as msgspec
Structs, read into the neutral ChatRequest of runtimes.capabilities.

Fields are those of Anthropic's Messages API reference and the `anthropic` SDK's
`message_create_params`. Fields the server has no use for (`metadata`, `service_tier`,
`container`, `cache_control`, ...) are accepted and ignored; docs/anthropic.md lists each.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

import msgspec
from localoip.runtimes import capabilities as base
from localoip.runtimes.capabilities import InputError
from localoip.runtimes.wire.anthropic.blocks import (
    Base64Source,
    Document,
    Image,
    RequestBlock,
    Text,
    Thinking,
    ToolResult,
    ToolUse,
    URLSource,
)
from localoip.runtimes.wire.controls import reasoning_fields
from localoip.runtimes.wire.images import ImageText, base64_image, url_image
from msgspec import Meta

Probability = Annotated[float, Meta(ge=0.0, le=1.0)]


class Message(msgspec.Struct, kw_only=True):
    """A turn: a string is one text block. A `system` message (text only) instructs the model
    where it stands in the conversation, as Claude Code's reminders do."""

    role: Literal["user", "assistant", "system"]
    content: str | list[RequestBlock]


class Tool(msgspec.Struct, kw_only=True):
    """A client tool: `input_schema` is its arguments' JSON schema. Server tools (a `type`
    such as `web_search_20250305`) run on Anthropic's side and are refused."""

    name: str
    description: str = ""
    input_schema: dict[str, Any] | None = None
    type: str | None = None
    strict: bool = False


class ToolChoice(msgspec.Struct, tag_field="type", kw_only=True):
    """How the model may use the tools; `disable_parallel_tool_use`: at most one call."""

    disable_parallel_tool_use: bool = False


class AutoChoice(ToolChoice, tag="auto"):
    pass


class AnyChoice(ToolChoice, tag="any"):
    pass


class NamedChoice(ToolChoice, tag="tool"):
    name: str


class NoChoice(ToolChoice, tag="none"):
    pass


class ThinkingConfig(msgspec.Struct, tag_field="type", kw_only=True):
    """Extended thinking: `enabled` with a budget, `disabled`, or `adaptive` (the model's own
    default). `display: "omitted"` sends thinking blocks without their text."""

    display: Literal["summarized", "omitted"] | None = None


class ThinkingEnabled(ThinkingConfig, tag="enabled"):
    budget_tokens: Annotated[int, Meta(ge=1)]


class ThinkingDisabled(ThinkingConfig, tag="disabled"):
    pass


class ThinkingAdaptive(ThinkingConfig, tag="adaptive"):
    pass


class JsonOutputFormat(msgspec.Struct, kw_only=True):
    type: Literal["json_schema"]
    schema: dict[str, Any]


class OutputConfig(msgspec.Struct, kw_only=True):
    """Structured output: the reply follows `format.schema` (enforced by grammar)."""

    format: JsonOutputFormat | None = None


class CountTokensRequest(msgspec.Struct, kw_only=True):
    """What a message's prompt is made of: the body of `/v1/messages/count_tokens`."""

    model: str
    messages: Annotated[list[Message], Meta(min_length=1)]
    system: str | list[Text] | None = None
    tools: list[Tool] | None = None
    tool_choice: AutoChoice | AnyChoice | NamedChoice | NoChoice | None = None
    thinking: ThinkingEnabled | ThinkingDisabled | ThinkingAdaptive | None = None
    output_config: OutputConfig | None = None


class MessagesRequest(CountTokensRequest, kw_only=True):
    """The body of `/v1/messages`: a prompt, and how to generate its reply."""

    max_tokens: Annotated[int, Meta(ge=base.FEWEST_TOKENS[base.Capability.CHAT])]
    stop_sequences: Annotated[list[str], Meta(max_length=16)] | None = None
    temperature: Probability | None = None
    top_p: Probability | None = None
    top_k: Annotated[int, Meta(ge=0)] | None = None
    stream: bool = False
    metadata: dict[str, Any] | None = None  # `user_id`, for Anthropic's abuse checks: ignored


# Budgets Claude Code asks for ("think" 4,000, "think hard" 10,000, "ultrathink" 31,999) as the
# efforts of a template that takes one (gpt-oss); a template with an on/off switch is on.
EFFORT_BUDGETS = ((8192, "low"), (24576, "medium"))


def effort_for(budget_tokens: int) -> str:
    """The reasoning effort a thinking budget asks for: low, medium or high."""
    return next((effort for limit, effort in EFFORT_BUDGETS if budget_tokens < limit), "high")


def chat_request(req: CountTokensRequest) -> base.ChatRequest:
    """The neutral chat of a Messages request (max_tokens and sampling only when it has them);
    InputError, naming the field, for what cannot be served as sent."""
    tools = tuple(_tool(t, i) for i, t in enumerate(req.tools or ()))
    sampling = base.Sampling()
    if isinstance(req, MessagesRequest):
        sampling = base.Sampling(
            max_tokens=req.max_tokens,
            temperature=req.temperature,
            top_p=req.top_p,
            top_k=req.top_k,
            stop=tuple(req.stop_sequences or ()),
        )
    messages = _system(req.system) + _messages(req.messages)
    choice = req.tool_choice
    return base.ChatRequest(
        messages=messages,
        sampling=sampling,
        tools=tools,
        tool_choice=_tool_choice(choice, tools),
        json_schema=req.output_config.format.schema
        if req.output_config and req.output_config.format
        else None,
        continue_final=_prefilled(req.messages),
        names=base.FieldNames("output_config.format", "tools[{}].input_schema"),
        parallel_tool_calls=False if choice and choice.disable_parallel_tool_use else None,
        **_reasoning(req.thinking),
    )


def _system(system: str | list[Text] | None) -> list[base.ChatMessage]:
    if system is None:
        return []
    text = system if isinstance(system, str) else "\n".join(b.text for b in system)
    return [base.ChatMessage("system", text)]


def _messages(messages: list[Message]) -> list[base.ChatMessage]:
    """Each turn as neutral messages: a user turn's tool results become `tool` messages, in
    order with its text and images (IMAGE_MARKER where each image block stood); an assistant
    turn's thinking, text and tool calls make one message; a system turn is a system message
    there."""
    out: list[base.ChatMessage] = []
    calls: set[str] = set()  # the ids the turn before called
    for i, m in enumerate(messages):
        blocks = [Text(text=m.content)] if isinstance(m.content, str) else m.content
        where = f"messages[{i}].content"
        if m.role == "assistant":
            out.append(_assistant(blocks, where))
            calls = {b.id for b in blocks if isinstance(b, ToolUse)}
            continue
        if m.role == "system":
            for j, block in enumerate(blocks):
                if not isinstance(block, Text):
                    _refuse(block, f"{where}[{j}]")
            out.append(base.ChatMessage("system", "\n".join(b.text for b in blocks)))
            continue
        parts = ImageText()
        for j, block in enumerate(blocks):
            if isinstance(block, ToolResult):
                if block.tool_use_id not in calls:
                    raise InputError(
                        f"{where}[{j}] is a tool_result for tool_use_id "
                        f"{block.tool_use_id!r}, which the assistant turn before it did not "
                        "call: each tool_result answers a tool_use of the message before",
                        f"{where}[{j}].tool_use_id",
                    )
                if parts.pieces:
                    out.append(_user(parts))
                    parts = ImageText()
                out.append(_result(block, f"{where}[{j}].content"))
            else:
                _add(parts, block, f"{where}[{j}]")
        if parts.pieces or not blocks:
            out.append(_user(parts))
        calls = set()
    return out


def _user(parts: ImageText) -> base.ChatMessage:
    return base.ChatMessage("user", parts.text("\n"), images=tuple(parts.images))


def _add(parts: ImageText, block: msgspec.Struct, where: str) -> None:
    """A text or image block added to a user turn's (or a tool result's) parts; InputError for
    any other block there."""
    if isinstance(block, Text):
        parts.add_text(block.text, f"{where}.text")
    elif isinstance(block, Image):
        parts.add_image(_image(block, where))
    else:
        _refuse(block, where)


def _image(block: Image, where: str) -> base.ChatImage:
    """An image block's image: base64 decoded, or a URL for the server to fetch."""
    source = block.source
    if isinstance(source, Base64Source):
        return base.ChatImage(base64_image(source.data, f"{where}.source.data"), where)
    if isinstance(source, URLSource):
        return url_image(source.url, where)
    raise InputError(
        f"{where} is a file source, which needs Anthropic's Files API: send the image as base64 "
        "or a URL",
        f"{where}.source.type",
    )


def _assistant(blocks: list[RequestBlock], where: str) -> base.ChatMessage:
    texts, reasoning, calls = [], [], []
    for j, block in enumerate(blocks):
        if isinstance(block, Text):
            texts.append(block.text)
        elif isinstance(block, Thinking):
            reasoning.append(block.thinking)
        elif isinstance(block, ToolUse):
            calls.append(base.ToolCall(block.id, block.name, json.dumps(block.input)))
        else:
            _refuse(block, f"{where}[{j}]")
    return base.ChatMessage(
        "assistant",
        "\n".join(texts) if texts or not calls else None,
        tool_calls=tuple(calls),
        reasoning="\n".join(reasoning) or None,
    )


def _result(block: ToolResult, where: str) -> base.ChatMessage:
    """A tool result as the model reads it, with any images it holds; a failed call's text
    starts with "Error: "."""
    parts = ImageText()
    if isinstance(block.content, str):
        parts.add_text(block.content, where)
    else:
        for k, part in enumerate(block.content):
            _add(parts, part, f"{where}[{k}]")
    text = parts.text("\n")
    return base.ChatMessage(
        "tool",
        f"Error: {text}" if block.is_error else text,
        tool_call_id=block.tool_use_id,
        images=tuple(parts.images),
    )


def _refuse(block: msgspec.Struct, where: str) -> None:
    """InputError for a block no model here can read where it stands."""
    if isinstance(block, Document):
        raise InputError(
            f"{where} is a document block, and no model served here reads documents; send "
            "text blocks",
            f"{where}.type",
        )
    name = block.__struct_config__.tag
    raise InputError(f"{where}: {name} blocks cannot stand in this message", f"{where}.type")


def _tool(tool: Tool, index: int) -> base.Tool:
    if tool.type not in (None, "custom"):
        raise InputError(
            f"tools[{index}] is a server tool ({tool.type!r}), which only Anthropic runs; "
            "send client tools with an input_schema",
            f"tools[{index}].type",
        )
    if tool.input_schema is None:
        raise InputError(f"tools[{index}] needs an input_schema", f"tools[{index}].input_schema")
    return base.Tool(tool.name, tool.description, tool.input_schema, tool.strict)


def _tool_choice(
    choice: AutoChoice | AnyChoice | NamedChoice | NoChoice | None,
    tools: tuple[base.Tool, ...],
) -> str:
    if isinstance(choice, NamedChoice):
        if choice.name not in {t.name for t in tools}:
            raise InputError(
                f"tool_choice names {choice.name!r}, which is not in tools", "tool_choice.name"
            )
        return choice.name
    if isinstance(choice, AnyChoice):
        if not tools:
            raise InputError("tool_choice 'any' needs at least one tool", "tool_choice")
        return "required"
    return "none" if isinstance(choice, NoChoice) else "auto"


def _prefilled(messages: list[Message]) -> bool:
    """Whether the last turn is the assistant's start of its reply (prefill), to continue."""
    last = messages[-1]
    if last.role != "assistant":
        return False
    text_only = isinstance(last.content, str) or all(isinstance(b, Text) for b in last.content)
    if len(messages) < 2 or not text_only:
        raise InputError(
            "a last assistant message is the start of the reply, to continue: it must follow "
            "another message and hold only text",
            f"messages[{len(messages) - 1}]",
        )
    return True


def _reasoning(thinking: ThinkingEnabled | ThinkingDisabled | ThinkingAdaptive | None) -> dict:
    """ChatRequest's reasoning fields: `enabled` turns reasoning on, at the effort of its
    budget (`effort_for`), and closes it after `budget_tokens`; `disabled` turns it off;
    `adaptive` or none leaves the model's default."""
    if isinstance(thinking, ThinkingEnabled):
        effort, budget = effort_for(thinking.budget_tokens), thinking.budget_tokens
    elif isinstance(thinking, ThinkingDisabled):
        effort, budget = "none", None
    else:
        effort, budget = None, None
    return reasoning_fields(effort, None, budget, effort_param="thinking")
