"""Each kind of chat input (system, developer, user, assistant, an assistant's tool call, a tool
result, tools offered) as a pair of OpenAI chat requests that differ only in it: the marked one
adds MARK in that kind's place. A model whose prompt leaves a kind out renders both alike; the
kind tests (unit/test_chat_templates.py, api/test_chat_templates_http.py) check that every
model's prompt shows it, or that the request is refused naming it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
from localoip.runtimes.capabilities import ChatRequest
from localoip.runtimes.wire.openai.requests import ChatCompletionRequest, chat_request

MARK = "Xylophone"  # a word no template writes
ASK = {"role": "user", "content": "What is the weather in Paris?"}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def _call(arguments: str) -> dict[str, Any]:
    call = {"id": "call_7f3a", "type": "function", "function": {"name": "get_weather"}}
    call["function"]["arguments"] = arguments
    return {"role": "assistant", "content": None, "tool_calls": [call]}


def _result(text: str) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": "call_7f3a", "content": text}


def _system(role: str) -> Callable[[bool], dict[str, Any]]:
    def body(marked: bool) -> dict[str, Any]:
        extra = [{"role": role, "content": f"Answer with the word {MARK}."}] if marked else []
        return {"messages": [*extra, ASK]}

    return body


def _user(marked: bool) -> dict[str, Any]:
    earlier = [
        {"role": "user", "content": f"My name is {MARK}."},
        {"role": "assistant", "content": "Hello."},
    ]
    return {"messages": [*(earlier if marked else []), ASK]}


def _assistant(marked: bool) -> dict[str, Any]:
    reply = f"It is sunny, {MARK}." if marked else "It is sunny."
    return {"messages": [ASK, {"role": "assistant", "content": reply}, ASK]}


def _tool_call(marked: bool) -> dict[str, Any]:
    args = '{"city": "Paris"}' if not marked else f'{{"city": "Paris {MARK}"}}'
    return {"messages": [ASK, _call(args), _result("sunny")], "tools": [WEATHER]}


def _tool_result(marked: bool) -> dict[str, Any]:
    result = f"sunny, {MARK}" if marked else "sunny"
    return {"messages": [ASK, _call('{"city": "Paris"}'), _result(result)], "tools": [WEATHER]}


def _tools(marked: bool) -> dict[str, Any]:
    tool = {**WEATHER, "function": {**WEATHER["function"], "name": f"get_{MARK}"}}
    return {"messages": [ASK], **({"tools": [tool]} if marked else {})}


@dataclass(frozen=True, slots=True)
class Kind:
    """A kind of chat input: `body(marked)` is an OpenAI chat body (messages and tools), and
    `param` the start of the field a refusal of it names."""

    name: str
    body: Callable[[bool], dict[str, Any]]
    param: str = "messages"

    def request(self, marked: bool) -> ChatRequest:
        """The neutral ChatRequest the server makes of the body."""
        wire = msgspec.convert({"model": "m", **self.body(marked)}, ChatCompletionRequest)
        return chat_request(wire)


KINDS = (
    Kind("system", _system("system")),
    Kind("developer", _system("developer")),
    Kind("user", _user),
    Kind("assistant", _assistant),
    Kind("tool-call", _tool_call),
    Kind("tool-result", _tool_result),
    Kind("tools", _tools, "tools"),
)
