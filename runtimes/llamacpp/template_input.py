"""A chat as a chat template takes it: OpenAI-shaped message dicts, with what the template
cannot take (template_caps.Caps) folded into what it can, so nothing is left out.

- A developer message is a system message.
- System messages a template has no place for (no system role, or none after the first turn,
  or only one) are folded into the next user turn, as Gemma's official template folds its
  own; several leading ones become one.
- Tools a template does not list, or whose calls no family reads (formats.families), are
  offered in a system message in the Hermes form; calls it does not render are written into
  the assistant's text in that form, and tool results it has no role for become user turns
  (`<tool_response>`, as Qwen2.5's template writes them).
- A turn with several calls becomes one turn per call for a template that renders one.
- Where a template insists on alternating turns, consecutive user (or assistant) texts are
  joined into one turn.
- A call's arguments are a mapping where the template iterates them, else the JSON text;
  call ids are cut to nine letters and digits where the template insists (Mistral's).
- An assistant turn's reasoning goes as `reasoning_content` (Qwen3's and GLM's templates
  render it where they keep reasoning) and, on a call with no text, as `thinking` (gpt-oss's);
  a template that reads neither leaves it out, as its model was trained.

`needled` gives the same chat with a needle for each message, call and tool: a render of it
that lacks one leaves that part out (prompts.py refuses such a request with a 400).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from typing import Any

from localoip.runtimes.capabilities import ChatMessage, InputError, Tool, ToolCall
from localoip.runtimes.llamacpp.template_caps import Caps
from localoip.runtimes.llamacpp.tool_offer import template_tools, tools_prompt

OFFER = -1  # the source of the tools offer in a system message: the request's `tools`


@dataclass(frozen=True, slots=True)
class ChatInput:
    """What a chat's prompt holds: its messages, and the tools offered (to the template, or,
    `in_template` false, in a system message; `forced`: a call must come)."""

    messages: list[ChatMessage]
    tools: tuple[Tool, ...] = ()
    in_template: bool = True
    forced: bool = False


@dataclass(frozen=True, slots=True)
class Folded:
    """A chat folded for a template: its messages, where each came from (indices of the chat's
    messages; OFFER for the tools offer) and the tools the template lists."""

    messages: list[dict[str, Any]]
    sources: list[tuple[int, ...]]
    tools: list[dict[str, Any]] | None


@dataclass(slots=True)
class _Turn:
    role: str
    text: str
    sources: tuple[int, ...]
    calls: tuple[ToolCall, ...] = ()
    call_id: str | None = None
    name: str | None = None
    reasoning: str = ""

    @property
    def plain(self) -> bool:
        """Text only: no calls, not a tool result."""
        return not self.calls and self.call_id is None


def written(calls: tuple[ToolCall, ...]) -> str:
    """Calls in the Hermes form, for a template that does not render calls."""
    return "".join(
        f"<tool_call>\n{json.dumps({'name': c.name, 'arguments': _arguments(c.arguments)})}"
        "\n</tool_call>"
        for c in calls
    )


def _arguments(text: str) -> Any:
    try:
        return json.loads(text) if text.strip() else {}
    except ValueError:
        return text


def fold(chat: ChatInput, caps: Caps) -> Folded:
    """The chat as `caps`' template takes it. InputError when a call's arguments must be a
    mapping and are not JSON."""
    turns = _merge_runs(_fold_systems(_turns(chat, caps), caps), caps)
    names = {c.id: c.name for m in chat.messages for c in m.tool_calls}
    tools = template_tools(chat.tools) if chat.tools and chat.in_template else None
    return Folded([_message(t, caps, names) for t in turns], [t.sources for t in turns], tools)


def _turns(chat: ChatInput, caps: Caps) -> list[_Turn]:
    """One turn per message (per call where the template renders one), with results and calls
    the template does not render as text, and the tools offer in the leading system turn."""
    turns: list[_Turn] = []
    for i, m in enumerate(chat.messages):
        role = "system" if m.role == "developer" else m.role
        text, calls, first = m.content or "", m.tool_calls, len(turns)
        if role == "tool" and not caps.tool_results:
            turns.append(_Turn("user", f"<tool_response>\n{text}\n</tool_response>", (i,)))
        elif calls and not caps.tool_calls:
            turns.append(_Turn(role, text + written(calls), (i,), name=m.name))
        elif len(calls) > 1 and not caps.parallel_calls:
            turns.append(_Turn(role, text, (i,), calls[:1], name=m.name))
            turns += [_Turn(role, "", (i,), (call,)) for call in calls[1:]]
        else:
            turns.append(_Turn(role, text, (i,), calls, m.tool_call_id, m.name))
        if m.reasoning and role == "assistant":
            turns[first].reasoning = m.reasoning  # with the turn's first call
    if chat.tools and not chat.in_template:
        offer = tools_prompt(chat.tools, chat.forced)
        if turns and turns[0].role == "system":
            turns[0].text = f"{turns[0].text}\n\n{offer}"
            turns[0].sources += (OFFER,)
        else:
            turns.insert(0, _Turn("system", offer, (OFFER,)))
    return turns


def _fold_systems(turns: list[_Turn], caps: Caps) -> list[_Turn]:
    """Leading system turns as one; each system turn the template has no place for put
    before the next user turn's text (or, with none after it, as a user turn of its own)."""
    out: list[_Turn] = []
    pending: list[_Turn] = []
    leading = True
    for turn in turns:
        if turn.role == "system":
            if not (caps.system_role if leading else caps.later_system):
                pending.append(turn)
            elif leading and out:
                _join(out[-1], turn)
            else:
                out.append(turn)
            continue
        leading = False
        if pending:
            folded = _Turn("user", "", ())
            for system in pending:
                _join(folded, system)
            pending = []
            if turn.role == "user" and turn.plain:
                _join(folded, turn)
                turn = folded
            else:
                out.append(folded)
        out.append(turn)
    if pending:
        folded = _Turn("user", "", ())
        for system in pending:
            _join(folded, system)
        out.append(folded)
    return out


def _join(into: _Turn, turn: _Turn) -> None:
    """`turn`'s text after `into`'s, a blank line between."""
    into.text = f"{into.text}\n\n{turn.text}" if into.text and turn.text else into.text + turn.text
    into.sources += turn.sources


def _merge_runs(turns: list[_Turn], caps: Caps) -> list[_Turn]:
    """For a template that insists on alternating turns: consecutive user (or assistant)
    texts as one turn."""
    if caps.consecutive_turns:
        return turns
    out: list[_Turn] = []
    for turn in turns:
        last = out[-1] if out else None
        if (
            last is not None
            and last.role == turn.role in ("user", "assistant")
            and last.plain
            and turn.plain
        ):
            _join(last, turn)
        else:
            out.append(turn)
    return out


def _message(turn: _Turn, caps: Caps, names: dict[str, str]) -> dict[str, Any]:
    content: Any = turn.text
    if turn.calls and not turn.text:
        content = None if caps.null_content else ""
    elif caps.typed_content and turn.text:
        content = [{"type": "text", "text": turn.text}]
    out: dict[str, Any] = {"role": turn.role, "content": content}
    name = turn.name or (names.get(turn.call_id) if turn.call_id is not None else None)
    if name:
        out["name"] = name
    if turn.calls:
        at = turn.sources[0]
        out["tool_calls"] = [_call(call, caps, at) for call in turn.calls]
    if turn.call_id is not None:
        out["tool_call_id"] = _call_id(turn.call_id, caps)
    if turn.reasoning:  # Qwen3 and GLM render `reasoning_content`; gpt-oss a call's `thinking`
        out["reasoning_content"] = turn.reasoning
        if turn.calls and not turn.text:
            out["thinking"] = turn.reasoning
    return out


def _call(call: ToolCall, caps: Caps, at: int) -> dict[str, Any]:
    arguments: Any = call.arguments
    if caps.object_arguments:
        try:
            arguments = json.loads(call.arguments) if call.arguments.strip() else {}
        except ValueError:
            raise InputError(
                f"messages[{at}]: the arguments of its call to {call.name} are not JSON, and "
                "this model's chat template reads them as an object",
                f"messages[{at}].tool_calls",
            ) from None
    function = {"name": call.name, "arguments": arguments}
    return {"id": _call_id(call.id, caps), "type": "function", "function": function}


def _call_id(call_id: str, caps: Caps) -> str:
    """The id as the template takes it: nine letters and digits where it insists (the same
    id always gives the same nine, so a call and its result still match)."""
    if not caps.short_ids or (len(call_id) == 9 and call_id.isalnum()):
        return call_id
    return hashlib.sha256(call_id.encode()).hexdigest()[:9]


def needled(chat: ChatInput) -> tuple[ChatInput, dict[str, tuple[str, str]]]:
    """The chat with a needle in place of each message's text, each call's name and each
    tool's name; for each needle, what it stands for and the request field that holds it.
    (The text of a message with calls is kept: templates may leave it out, as a preamble.)"""
    needles: dict[str, tuple[str, str]] = {}

    def needle(what: str, param: str) -> str:
        word = f"zq{len(needles)}needle"
        needles[word] = (what, param)
        return word

    messages = []
    for i, m in enumerate(chat.messages):
        if m.tool_calls:
            calls = tuple(
                replace(c, name=needle(f"the call to {c.name} in messages[{i}]", f"messages[{i}]"))
                for c in m.tool_calls
            )
            m = replace(m, tool_calls=calls)
        elif m.content and m.content.strip():
            m = replace(m, content=needle(f"messages[{i}] ({m.role})", f"messages[{i}]"))
        messages.append(m)
    tools = tuple(
        replace(t, name=needle(f"tools[{k}] ({t.name})", "tools")) for k, t in enumerate(chat.tools)
    )
    return replace(chat, messages=messages, tools=tools), needles
