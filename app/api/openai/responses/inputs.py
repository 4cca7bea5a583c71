"""A Responses request's input: its items checked and read, and the chat they make.

Each input item is checked by hand, so an error names the offending item as `param`
(`input[2].call_id`); what it reads are the wire's typed items, stored as they are.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from localoip.app.api.openai.responses.sealer import Sealer
from localoip.app.core.errors import InvalidInput
from localoip.runtimes import capabilities as base
from localoip.runtimes.wire.controls import reasoning_fields
from localoip.runtimes.wire.images import url_image
from localoip.runtimes.wire.openai.responses import requests as rt
from localoip.runtimes.wire.openai.responses.items import (
    CompactionItem,
    CompactionTriggerItem,
    FunctionCallItem,
    FunctionCallOutputItem,
    InputImage,
    InputText,
    Item,
    MessageItem,
    OutputText,
    ReasoningItem,
    ReasoningText,
    SummaryText,
    message_item,
    new_id,
    user_message,
)
from localoip.runtimes.wire.openai.responses.objects import TERMINAL, Response

TEXT_PARTS = ("input_text", "output_text")
SUMMARY_PREFIX = "Summary of the conversation so far:\n"
# How the Responses API names the fields a runtime's errors point at.
NAMES = base.FieldNames(json_schema="text.format", tool_parameters="tools[{}].parameters")


def refuse_unsupported(req: rt.ResponseInput) -> None:
    for name in ("conversation", "prompt"):
        if getattr(req, name) is not None:
            raise InvalidInput(f"{name} is not supported by this server", name)


def _string(item: dict[str, Any], key: str, where: str) -> str:
    value = item.get(key)
    if not isinstance(value, str):
        raise InvalidInput(f"{where}.{key} is required and must be a string", f"{where}.{key}")
    return value


def _texts(content: Any, where: str) -> list[str]:
    """The texts of a message's content: a string, or a list of text parts."""
    if isinstance(content, str):
        return [content]
    if not isinstance(content, list) or not content:
        raise InvalidInput(
            f"{where}.content must be a string or a non-empty list of text parts",
            f"{where}.content",
        )
    texts = []
    for j, part in enumerate(content):
        at = f"{where}.content[{j}]"
        if not isinstance(part, dict) or part.get("type") not in TEXT_PARTS:
            kind = part.get("type") if isinstance(part, dict) else type(part).__name__
            raise InvalidInput(
                f"content part type {kind!r} is not supported; send input_text or "
                "output_text parts",
                f"{at}.type",
            )
        texts.append(_string(part, "text", at))
    return texts


def _has_images(content: Any) -> bool:
    return isinstance(content, list) and any(
        isinstance(part, dict) and part.get("type") == "input_image" for part in content
    )


def _input_parts(content: list[Any], where: str) -> list[InputText | OutputText | InputImage]:
    """A user's parts with images: input_text, and input_image as a data: URL, base64 or a URL
    the server fetches (a data URL or base64 is checked to decode here, so an error names the
    part; the runtime checks the image)."""
    parts: list[InputText | OutputText | InputImage] = []
    for j, part in enumerate(content):
        at = f"{where}.content[{j}]"
        if isinstance(part, dict) and part.get("type") == "input_image":
            url = _string(part, "image_url", at)
            try:
                url_image(url, f"{at}.image_url")
            except base.InputError as exc:
                raise InvalidInput(str(exc), exc.param) from None
            parts.append(InputImage(image_url=url, detail=str(part.get("detail") or "auto")))
        else:
            if not isinstance(part, dict) or part.get("type") != "input_text":
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise InvalidInput(
                    f"content part type {kind!r} is not supported; send input_text or "
                    "input_image parts",
                    f"{at}.type",
                )
            parts.append(InputText(text=_string(part, "text", at)))
    return parts


def _parts(raw: dict[str, Any], key: str, kind: str, where: str) -> list[str]:
    """The texts of a reasoning item's `summary` or `content`: a list of `kind` parts."""
    value = raw.get(key) or []
    if not isinstance(value, list):
        raise InvalidInput(f"{where}.{key} must be a list of {kind} parts", f"{where}.{key}")
    texts = []
    for j, part in enumerate(value):
        at = f"{where}.{key}[{j}]"
        if not isinstance(part, dict) or part.get("type") != kind:
            raise InvalidInput(f"{at} must be a {kind} part", f"{at}.type")
        texts.append(_string(part, "text", at))
    return texts


def _item(raw: dict[str, Any], where: str, calls: set[str], sealer: Sealer) -> Item:
    kind = raw.get("type", "message")
    given = raw.get("id")

    def iid(prefix: str) -> str:
        return given if isinstance(given, str) else new_id(prefix)

    if kind == "compaction":
        token = _string(raw, "encrypted_content", where)
        sealer.open(token, f"{where}.encrypted_content")  # refuse a forged one here, by name
        return CompactionItem(id=iid("cmp"), encrypted_content=token)
    if kind == "compaction_trigger":
        return CompactionTriggerItem(id=iid("ctr"))
    if kind == "reasoning":  # kept with the input, never shown to the model (chat_messages)
        return ReasoningItem(
            id=iid("rs"),
            summary=[SummaryText(text=t) for t in _parts(raw, "summary", "summary_text", where)],
            content=[
                ReasoningText(text=t) for t in _parts(raw, "content", "reasoning_text", where)
            ],
        )
    if kind == "message":
        role = raw.get("role")
        if role not in ("user", "system", "developer", "assistant"):
            raise InvalidInput(
                f"{where}.role must be user, system, developer or assistant, not {role!r}",
                f"{where}.role",
            )
        content = raw.get("content")
        if role != "assistant" and _has_images(content):
            return MessageItem(id=iid("msg"), role=role, content=_input_parts(content, where))
        return message_item(iid("msg"), role, _texts(content, where))
    if kind == "function_call":
        return FunctionCallItem(
            id=iid("fc"),
            call_id=_string(raw, "call_id", where),
            name=_string(raw, "name", where),
            arguments=_string(raw, "arguments", where),
        )
    if kind == "function_call_output":
        call_id = _string(raw, "call_id", where)
        if call_id not in calls:
            raise InvalidInput(
                f"no function_call with call_id {call_id!r} comes before this output",
                f"{where}.call_id",
            )
        output = raw.get("output")
        text = output if isinstance(output, str) else "".join(_texts(output, f"{where}.output"))
        return FunctionCallOutputItem(id=iid("fco"), call_id=call_id, output=text)
    raise InvalidInput(
        f"input item type {kind!r} is not supported; send message, reasoning, function_call, "
        "function_call_output, compaction or compaction_trigger items",
        f"{where}.type",
    )


def input_items(
    value: str | list[dict[str, Any]] | None, context: list[Item], sealer: Sealer
) -> list[Item]:
    """The request's input as stored items; `context` is what comes before it (a previous
    response's input and output), where a function_call_output finds its call."""
    if isinstance(value, str):
        return [user_message(value)]
    if not value:
        raise InvalidInput("input is required: a string or a non-empty list of items", "input")
    calls = {item.call_id for item in context if isinstance(item, FunctionCallItem)}
    items = []
    for i, raw in enumerate(value):
        item = _item(raw, f"input[{i}]", calls, sealer)
        if isinstance(item, FunctionCallItem):
            calls.add(item.call_id)
        if isinstance(item, CompactionTriggerItem) and i != len(value) - 1:
            raise InvalidInput(
                "a compaction_trigger item must be the last input item", f"input[{i}].type"
            )
        items.append(item)
    return items


def compacts(items: list[Item]) -> bool:
    """Whether the input ends with a compaction_trigger: the response is then a compaction."""
    return bool(items) and isinstance(items[-1], CompactionTriggerItem)


def since_compaction(items: list[Item]) -> list[Item]:
    """What the model sees of `items`: the last compaction item stands for everything before
    it but the user's own messages, which OpenAI's compaction keeps word for word."""
    last = max((i for i, item in enumerate(items) if isinstance(item, CompactionItem)), default=-1)
    if last < 0:
        return items
    kept = [item for item in items[:last] if isinstance(item, MessageItem) and item.role == "user"]
    return kept + items[last:]


def chat_messages(
    instructions: str | None, items: list[Item], sealer: Sealer
) -> list[base.ChatMessage]:
    """Items as chat messages: calls join the assistant turn, outputs become tool messages,
    and a compaction reads as the assistant's summary of what it replaced. A reasoning item
    (given back, or a previous response's) goes with the assistant turn that follows it, as
    that turn's reasoning, which reaches the model only as its template renders it; one that
    no assistant turn follows is left out."""
    messages = [base.ChatMessage("system", instructions)] if instructions else []
    thought: str | None = None  # a reasoning item's, waiting for its assistant turn
    for item in since_compaction(items):
        if isinstance(item, ReasoningItem):
            thought = item.text or "".join(part.text for part in item.summary) or None
            continue
        if isinstance(item, CompactionItem):
            # Input items were opened when they were read; a stored one fails here only if
            # the key has changed since.
            summary = sealer.open(item.encrypted_content, "previous_response_id")
            messages.append(base.ChatMessage("assistant", SUMMARY_PREFIX + summary))
        elif isinstance(item, MessageItem):
            reasoning = thought if item.role == "assistant" else None
            images = tuple(url_image(url, "input") for url in item.images)
            messages.append(
                base.ChatMessage(item.role, item.text, reasoning=reasoning, images=images)
            )
        elif isinstance(item, FunctionCallItem):
            call = base.ToolCall(item.call_id, item.name, item.arguments)
            if messages and messages[-1].role == "assistant" and thought is None:
                last = messages[-1]
                messages[-1] = replace(last, tool_calls=(*last.tool_calls, call))
            else:
                messages.append(
                    base.ChatMessage("assistant", None, tool_calls=(call,), reasoning=thought)
                )
        elif isinstance(item, FunctionCallOutputItem):
            messages.append(base.ChatMessage("tool", item.output, tool_call_id=item.call_id))
        thought = None
    return messages


def tools(req: rt.ResponseInput) -> tuple[base.Tool, ...]:
    found = []
    for i, tool in enumerate(req.tools or ()):
        if tool.type != "function":
            raise InvalidInput(
                f"tool type {tool.type!r} is not supported; send function tools",
                f"tools[{i}].type",
            )
        if not tool.name:
            raise InvalidInput("a function tool needs a name", f"tools[{i}].name")
        # The Responses API's function tools are strict unless they say otherwise.
        strict = tool.strict is not False
        found.append(base.Tool(tool.name, tool.description or "", tool.parameters, strict))
    return tuple(found)


def tool_choice(req: rt.ResponseInput, offered: tuple[base.Tool, ...]) -> str:
    choice = req.tool_choice
    if isinstance(choice, rt.NamedToolChoice):
        if choice.type != "function" or not choice.name:
            raise InvalidInput(
                "tool_choice must be auto, none, required or {type: function, name}",
                "tool_choice",
            )
        if choice.name not in {t.name for t in offered}:
            raise InvalidInput(
                f"tool_choice names {choice.name!r}, which is not in tools", "tool_choice"
            )
        return choice.name
    if choice == "required" and not offered:
        raise InvalidInput("tool_choice 'required' needs at least one tool", "tool_choice")
    return choice or "auto"


def json_schema(req: rt.ResponseInput) -> dict[str, Any] | None:
    """The schema text.format asks for: None for text, {} for any JSON object."""
    fmt = req.text.format if req.text else None
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_object":
        return {}
    if not fmt.name:
        raise InvalidInput("text.format type 'json_schema' needs a name", "text.format.name")
    if fmt.schema is None:
        raise InvalidInput("text.format type 'json_schema' needs a schema", "text.format.schema")
    return fmt.schema


def chat_request(req: rt.ResponseInput, items: list[Item], sealer: Sealer) -> base.ChatRequest:
    """The chat the model runs for a response whose whole input is `items`."""
    offered = tools(req)
    sampling = base.Sampling()
    if isinstance(req, rt.CreateResponse):
        sampling = base.Sampling(
            max_tokens=req.max_output_tokens,
            temperature=req.temperature,
            top_p=req.top_p,
            deterministic=req.deterministic,
        )
    effort = req.reasoning.effort if req.reasoning else None
    return base.ChatRequest(
        messages=chat_messages(req.instructions, items, sealer),
        sampling=sampling,
        tools=offered,
        tool_choice=tool_choice(req, offered),
        json_schema=json_schema(req),
        names=NAMES,
        parallel_tool_calls=req.parallel_tool_calls,
        truncation=req.truncation,
        **reasoning_fields(
            effort, req.chat_template_kwargs, req.max_reasoning_tokens, "reasoning.effort"
        ),
    )


def context_of(previous: Response, items: list[Item]) -> list[Item]:
    """What a response continuing `previous` starts from: its input items, then its output."""
    if previous.status not in TERMINAL:
        raise InvalidInput(
            f"response {previous.id!r} has not finished (status {previous.status})",
            "previous_response_id",
        )
    return [*items, *previous.output]
