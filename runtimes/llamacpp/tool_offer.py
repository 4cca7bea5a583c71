"""Offering tools to a chat model: as its chat template takes them (OpenAI's shape), or in a
system prompt in the Hermes form for a template that takes none; a tool's arguments schema;
and the tools a forced call may use."""

from __future__ import annotations

import json
from typing import Any

from localoip.runtimes.capabilities import InputError, Tool

NO_ARGUMENTS = {"type": "object", "properties": {}, "additionalProperties": False}


def parameters(tool: Tool) -> dict[str, Any]:
    """A tool's arguments schema; none given means it takes no arguments."""
    return tool.parameters if tool.parameters is not None else NO_ARGUMENTS


def template_tools(tools: tuple[Tool, ...]) -> list[dict[str, Any]]:
    """Tools as chat templates take them (OpenAI's shape)."""
    return [
        {
            "type": "function",
            "function": {"name": t.name, "description": t.description, "parameters": parameters(t)},
        }
        for t in tools
    ]


def tools_prompt(tools: tuple[Tool, ...], forced: bool) -> str:
    """A system-prompt section that lists the tools and how to call them (Hermes form)."""
    listed = "\n".join(
        json.dumps({"name": t.name, "description": t.description, "parameters": parameters(t)})
        for t in tools
    )
    how = '<tool_call>{"name": <function name>, "arguments": <arguments object>}</tool_call>'
    if forced:
        return f"You can call these functions:\n{listed}\nReply with only {how}."
    return (
        f"You can call these functions:\n{listed}\nTo call a function, reply with only "
        f"{how}. Otherwise, answer normally."
    )


def chosen(tools: tuple[Tool, ...], choice: str) -> tuple[Tool, ...]:
    """The tools a forced reply may call: the named one, or any for "required"."""
    found = tuple(t for t in tools if choice in ("required", t.name))
    if not found:
        raise InputError(f"tool_choice names {choice!r}, which is not in tools", "tool_choice")
    return found
