"""Tool calling for local chat models: the prompt that offers tools, the call grammar, the parser.

A call is the JSON object {"name": ..., "arguments": {...}}. When a call is required or
named, the reply is constrained to that object's JSON schema; with "auto" the model may
answer in text or write calls as <tool_call>{...}</tool_call>.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from localoip.runtimes.base import ChatMessage, InputError, Tool, ToolCall

CALL = re.compile(r"<tool_call>\s*(\{.*?\})\s*</tool_call>", re.DOTALL)


def tools_prompt(tools: tuple[Tool, ...], choice: str) -> str:
    """A system-prompt section that lists the tools and how to call them."""
    listed = "\n".join(
        json.dumps({"name": t.name, "description": t.description, "parameters": t.parameters or {}})
        for t in tools
    )
    if choice == "auto":
        how = (
            "To call a function, reply with only "
            '<tool_call>{"name": <function name>, "arguments": <arguments object>}</tool_call>. '
            "Otherwise, answer normally."
        )
    else:
        how = 'Reply with a JSON object {"name": <function name>, "arguments": <arguments object>}.'
    return f"You can call these functions:\n{listed}\n{how}"


def call_schema(tools: tuple[Tool, ...], choice: str) -> dict[str, Any]:
    """The JSON schema a forced reply must follow: one call to the named tool, or to any tool."""
    chosen = [t for t in tools if choice in ("required", t.name)]
    if not chosen:
        raise InputError(f"tool_choice names {choice!r}, which is not in tools", "tool_choice")
    options = [
        {
            "type": "object",
            "properties": {
                "name": {"const": t.name},
                "arguments": t.parameters or {"type": "object"},
            },
            "required": ["name", "arguments"],
        }
        for t in chosen
    ]
    return options[0] if len(options) == 1 else {"anyOf": options}


def new_call(name: str, arguments: Any) -> ToolCall:
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return ToolCall(id=f"call_{uuid.uuid4().hex[:24]}", name=name, arguments=text)


def parse_forced(text: str) -> tuple[ToolCall, ...]:
    """The call in a grammar-constrained reply."""
    value = json.loads(text)
    return (new_call(value["name"], value["arguments"]),)


def parse_auto(text: str, tools: tuple[Tool, ...]) -> tuple[str, tuple[ToolCall, ...]]:
    """Split a free reply into its text and the calls it wrote to known tools."""
    names = {t.name for t in tools}
    calls = []
    for match in CALL.finditer(text):
        try:
            value = json.loads(match[1])
        except ValueError:
            continue
        if isinstance(value, dict) and value.get("name") in names:
            calls.append(new_call(value["name"], value.get("arguments", {})))
    if not calls:
        return text, ()
    return CALL.sub("", text).strip(), tuple(calls)


def as_template_message(message: ChatMessage) -> dict[str, Any]:
    """A message as plain chat-template input: earlier calls are written back as text."""
    content = message.content or ""
    if message.tool_calls:
        content += "".join(
            f'<tool_call>{{"name": {json.dumps(c.name)}, "arguments": {c.arguments}}}</tool_call>'
            for c in message.tool_calls
        )
    role = "system" if message.role == "developer" else message.role
    return {"role": role, "content": content}
