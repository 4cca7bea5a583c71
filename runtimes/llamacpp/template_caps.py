"""What a chat template renders, found by rendering it: llama.cpp's way (minja's
`chat_template` capabilities, `common/jinja/caps.cpp`). Each kind of input is rendered with a
needle (a word nothing else writes) and the needle looked for in the output; a template that
raises, or leaves the needle out, does not take that kind. prompts.py folds what a template
does not take into what it does (a system message into the next user turn, a tool result into
a user turn, calls into text), so no message is left out.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# Renders (messages, tools, add_generation_prompt) to prompt text; raises when it cannot.
Render = Callable[[list[dict[str, Any]], list[dict[str, Any]] | None, bool], str]

SHORT_ID = "a1B2c3D4e"  # nine letters and digits, as Mistral's templates insist
LONG_ID = "call_" + "0f" * 12  # OpenAI's form


@dataclass(frozen=True, slots=True)
class Caps:
    """What a template takes. The defaults are what llama-cpp-python's own chat handlers take
    (OpenAI-shaped messages); `probe` finds a template's."""

    system_role: bool = True  # a leading system message (in its place or folded by the template)
    later_system: bool = True  # system messages after the first user turn, each kept
    consecutive_turns: bool = True  # two user messages in a row, both kept
    typed_content: bool = False  # content only as a list of text parts
    null_content: bool = False  # a call's message has content None when it has no text
    tools: bool = True  # `tools` listed
    tool_calls: bool = True  # an assistant message's `tool_calls`
    object_arguments: bool = False  # a call's arguments as a mapping (else JSON text)
    parallel_calls: bool = True  # several calls in one assistant message
    tool_results: bool = True  # `tool` messages
    short_ids: bool = False  # call ids of nine letters and digits, no other


def _attempt(render: Render, messages: list[dict[str, Any]], tools: Any = None) -> str:
    """The text, or "" when the template raises (a probe never fails a load)."""
    try:
        return render(messages, tools, False)
    except Exception:
        return ""


def _has_arguments(text: str) -> bool:
    """Whether a call's arguments were written out as a template writes a mapping's keys."""
    forms = ('"argument_needle":', "'argument_needle':", ">argument_needle<")
    return any(f in text for f in (*forms, "<parameter=argument_needle>", '="argument_needle"'))


class _Probe:
    """The probes of one template, each building on what the earlier ones found."""

    def __init__(self, render: Render) -> None:
        self.render = render
        self.typed = False
        self.null = False

    def text(self, role: str, text: str | None, **fields: Any) -> dict[str, Any]:
        content: Any = [{"type": "text", "text": text}] if self.typed and text else text
        return {"role": role, "content": content, **fields}

    def calls(self, *calls: dict[str, Any]) -> dict[str, Any]:
        """An assistant message of calls only."""
        return self.text("assistant", None if self.null else "", tool_calls=list(calls))

    def has(
        self,
        needles: tuple[str, ...],
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None = None,
    ) -> bool:
        """Whether the render of `messages` (and `tools`) holds every one of `needles`."""
        out = _attempt(self.render, messages, tools)
        return all(n in out for n in needles)


def _call(name: str, arguments: Any, call_id: str = SHORT_ID) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def probe(render: Render) -> Caps:
    """The Caps of the template that `render` renders."""
    p = _Probe(render)
    user = {"role": "user", "content": "user_needle"}
    p.typed = not p.has(("user_needle",), [user]) and p.has(
        ("user_needle",), [{"role": "user", "content": [{"type": "text", "text": "user_needle"}]}]
    )
    user = p.text("user", "user_needle")
    reply = p.text("assistant", "reply_needle")
    later = p.text("user", "later_needle")
    leading = p.text("system", "leading_system_needle")
    system_role = p.has(("leading_system_needle",), [leading, user])
    later_system = p.has(
        ("leading_system_needle", "later_system_needle"),
        [leading, user, reply, p.text("system", "later_system_needle"), later],
    )
    consecutive = p.has(("user_needle", "later_needle"), [user, later])
    tool = {
        "type": "function",
        "function": {
            "name": "tool_needle",
            "description": "A tool.",
            "parameters": {"type": "object", "properties": {"arg": {"type": "string"}}},
        },
    }
    tools = p.has(("tool_needle",), [user], [tool])

    # A call's message has content "" unless only None renders the calls (DeepSeek R1's
    # template renders calls only where content is none; most fail on None, or print it).
    args = {"argument_needle": "value"}
    for p.null in (False, True):
        as_text = _has_arguments(_attempt(render, [user, p.calls(_call("f", json.dumps(args)))]))
        as_object = _has_arguments(_attempt(render, [user, p.calls(_call("f", args))]))
        if as_text or as_object:
            break
    tool_calls = as_text or as_object
    p.null = p.null and tool_calls
    object_arguments = as_object and not as_text
    args_value: Any = args if object_arguments else json.dumps(args)

    def called(name: str, call_id: str = SHORT_ID) -> dict[str, Any]:
        if tool_calls:
            return p.calls(_call(name, args_value, call_id))
        return p.text("assistant", f"calls {name}")

    parallel = tool_calls and p.has(
        ("first_needle", "second_needle"),
        [user, p.calls(_call("first_needle", args_value), _call("second_needle", args_value))],
    )
    result = p.text("tool", "result_needle", tool_call_id=SHORT_ID, name="f")
    tool_results = p.has(("result_needle",), [user, called("f"), result])
    long_result = {**result, "tool_call_id": LONG_ID}
    short_ids = (
        tool_calls
        and p.has(("call_needle",), [user, called("call_needle"), result])
        and not p.has(("call_needle",), [user, called("call_needle", LONG_ID), long_result])
    )
    return Caps(
        system_role=system_role,
        later_system=later_system,
        consecutive_turns=consecutive,
        typed_content=p.typed,
        null_content=p.null,
        tools=tools,
        tool_calls=tool_calls,
        object_arguments=object_arguments,
        parallel_calls=parallel,
        tool_results=tool_results,
        short_ids=short_ids,
    )
