"""Tool calling for local chat models: how each model family writes calls, and reading them.

A family is recognised from the GGUF's chat template:
- Hermes/Qwen: `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`, one block per call;
- Llama 3.x: a reply that is `{"name": ..., "parameters": {...}}` (maybe after `<|python_tag|>`),
  several calls separated by `;` (or newlines), or a JSON array of calls; `"type": "function"`
  may come before the name;
- Mistral: `[TOOL_CALLS][{"name": ..., "arguments": {...}}, ...]`.
A template of a family read here that lists `tools` is given them; for any other model the
tools are offered in a system message (`tools_prompt`) and calls use the Hermes form. How the
history's calls and results reach a template is template_input.py's.

`CallReader` reads a reply as it streams: text passes at once, except what may still become
the family's call marker; a call streams as pieces (id and name, then the arguments text).
"""

from __future__ import annotations

import json
import re
import secrets
import string
import uuid
from dataclasses import dataclass, replace
from typing import Any

from localoip.runtimes.capabilities import InputError, Tool, ToolCall, ToolCallPiece
from localoip.runtimes.llamacpp.json_grammar import GrammarBuilder, literal

NO_ARGUMENTS = {"type": "object", "properties": {}, "additionalProperties": False}


@dataclass(frozen=True, slots=True)
class Family:
    """How a model family writes tool calls."""

    name: str
    markers: tuple[str, ...]  # text that starts the calls
    open: str  # written before a call the grammar forces
    close: str  # and after it
    arguments_key: str = "arguments"
    template_tools: bool = False  # the chat template lists the tools itself
    at_start_only: bool = False  # a marker counts only at the start of the reply

    def new_id(self) -> str:
        if self.name == "mistral":  # its templates insist on 9 letters and digits
            return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(9))
        return f"call_{uuid.uuid4().hex[:24]}"


HERMES = Family("hermes", ("<tool_call>",), "<tool_call>\n", "\n</tool_call>")
LLAMA3 = Family(
    "llama3",
    ("<|python_tag|>", "{", "[{"),
    "",
    "",
    "parameters",
    at_start_only=True,
)
MISTRAL = Family("mistral", ("[TOOL_CALLS]",), "[TOOL_CALLS][", "]")


def family(template: str | None) -> Family:
    """The tool-call family of a chat template (None: a template we do not have)."""
    template = template or ""
    found = HERMES
    if "[TOOL_CALLS]" in template:
        found = MISTRAL
    elif "<|python_tag|>" in template or (
        "<|start_header_id|>" in template and '"parameters"' in template
    ):
        found = LLAMA3
    elif "<tool_call>" not in template:
        return HERMES
    return replace(found, template_tools=re.search(r"\btools\b", template) is not None)


# -- offering tools ---------------------------------------------------------------------------


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


def call_rule(builder: GrammarBuilder, fam: Family, tools: tuple[Tool, ...]) -> str:
    """A grammar rule for one call, written as `fam` writes it, to one of `tools`."""
    options = []
    for tool in tools:
        args = builder.arguments(tool, parameters(tool))
        head = f'{{"name": {json.dumps(tool.name)}, "{fam.arguments_key}": '
        options.append(f"{literal(head)} {args} {literal('}')}")
    body = builder.rule("call", " | ".join(options))
    return builder.rule("tool-call", f"{literal(fam.open)} {body} {literal(fam.close)}")


# -- reading replies --------------------------------------------------------------------------

# A call object's head; Llama 3.x may say `"type": "function"` first.
NAME = re.compile(r'(?:"type"\s*:\s*"function"\s*,\s*)?"name"\s*:\s*("(?:[^"\\]|\\.)*")')
# Where its arguments start: models of every family write either key.
ARGUMENTS = re.compile(r'\s*,\s*"(?:arguments|parameters)"\s*:\s*')


@dataclass
class _Call:
    index: int
    id: str
    start: int  # where its text starts in the reply
    name: str | None = None
    name_end: int = 0
    args_at: int | None = None  # where its arguments start
    args_end: int | None = None  # and end, once known
    sent: int = 0  # arguments characters streamed


class CallReader:
    """Splits a reply, as it streams, into text and tool calls written the family's way."""

    def __init__(self, fam: Family, tools: tuple[Tool, ...], forced: bool) -> None:
        self.fam = fam
        self.names = {t.name for t in tools}
        self.forced = forced
        self.reply = ""
        self.sent = 0  # reply characters handed out as text
        self.calls: list[_Call] = []
        self.calling = forced  # inside the calls part of the reply

    def feed(self, text: str) -> tuple[str, list[ToolCallPiece]]:
        """Take more reply text; the text and call pieces that are now certain."""
        self.reply += text
        if not self.calling:
            start = self._marker()
            if start is None:
                end = len(self.reply) - self._maybe_marker()
                out, self.sent = self.reply[self.sent : end], max(self.sent, end)
                return out, []
            out, self.sent = self.reply[self.sent : start], start
            self.calling = True
            return out, self._read_calls()
        return "", self._read_calls()

    def end(self, cut: bool) -> tuple[str, list[ToolCallPiece], tuple[ToolCall, ...]]:
        """The reply has ended (`cut`: by the token limit): what is left, and the calls."""
        pieces = self._read_calls() if self.calling else []
        calls = [c for c in self.calls if c.name is not None and (cut or c.args_end is not None)]
        if self.calling and not calls and not self.forced:
            out, self.sent = self.reply[self.sent :], len(self.reply)  # it was text after all
            return out, [], ()
        out = "" if self.calling else self.reply[self.sent :]
        for c in calls:
            if c.args_at is None:
                c.args_at = c.args_end = len(self.reply)
        done = tuple(
            ToolCall(c.id, c.name or "", self._arguments_text(c, len(self.reply))) for c in calls
        )
        return out, pieces, done

    def _arguments_text(self, c: _Call, limit: int) -> str:
        assert c.args_at is not None
        return self.reply[c.args_at : c.args_end if c.args_end is not None else limit]

    def _marker(self) -> int | None:
        if self.fam.at_start_only:
            stripped = len(self.reply) - len(self.reply.lstrip())
            head = self.reply[stripped:]
            return stripped if any(head.startswith(m) for m in self.fam.markers) else None
        found = [at for m in self.fam.markers if (at := self.reply.find(m, self.sent)) >= 0]
        return min(found) if found else None

    def _maybe_marker(self) -> int:
        """Characters at the end of the reply that may begin a marker."""
        if self.fam.at_start_only:
            head = self.reply.lstrip()
            return len(self.reply) if any(m.startswith(head) for m in self.fam.markers) else 0
        held = 0
        for marker in self.fam.markers:
            for i in range(min(len(marker), len(self.reply)), held, -1):
                if self.reply.endswith(marker[:i]):
                    held = i
                    break
        return held

    def _read_calls(self) -> list[ToolCallPiece]:
        pieces: list[ToolCallPiece] = []
        while True:
            call = self.calls[-1] if self.calls else None
            if call is None or call.args_end is not None:
                at = self.sent if call is None else call.args_end
                assert at is not None
                start = self.reply.find("{", at)
                if start < 0:
                    return pieces
                call = _Call(len(self.calls), self.fam.new_id(), start)
                self.calls.append(call)
            if call.name is None:
                found = NAME.match(self.reply, call.start + 1 + self._space(call.start + 1))
                if found is None:
                    return pieces
                name = json.loads(found[1])
                if name not in self.names and not self.forced:
                    return pieces  # not a call to one of ours; it ends as text
                call.name, call.name_end = name, found.end()
                pieces.append(ToolCallPiece(call.index, call.id, name))
            if call.args_at is None:
                args = ARGUMENTS.match(self.reply, call.name_end)
                if args is None or args.end() == len(self.reply):
                    return pieces
                call.args_at = args.end()
            end = _json_end(self.reply, call.args_at)
            limit = len(self.reply) if end is None else end
            text = self.reply[call.args_at + call.sent : limit]
            if text:
                pieces.append(ToolCallPiece(call.index, arguments=text))
                call.sent += len(text)
            if end is None:
                return pieces
            call.args_end = end

    def _space(self, at: int) -> int:
        return len(self.reply[at:]) - len(self.reply[at:].lstrip())


def _json_end(text: str, start: int) -> int | None:
    """Where the JSON value starting at `start` ends, or None if it has not ended yet."""
    depth, in_string, escaped = 0, False, False
    for i in range(start, len(text)):
        ch = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
                if depth == 0:
                    return i + 1
        elif depth == 0 and ch in ",}]" and i > start:
            return i
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
            if depth == 0:
                return i + 1
    return None
