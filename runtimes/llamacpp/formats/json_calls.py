"""Tool calls written as JSON objects after a marker: one object, several, or a list of them
(Hermes and Qwen, Llama 3.x, Mistral's first form, Granite, Phi-4-mini, Command R7B)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from localoip.runtimes.capabilities import Tool
from localoip.runtimes.llamacpp.formats.grammar import arguments_rule, repeated
from localoip.runtimes.llamacpp.formats.output import Calls
from localoip.runtimes.llamacpp.formats.scan import (
    Scan,
    Step,
    accept,
    json_string,
    json_value,
    peek,
    skip_space,
)
from localoip.runtimes.llamacpp.json_grammar import GrammarBuilder, literal


@dataclass
class _Found:
    """What one call object has said so far."""

    name: str | None = None
    id: str | None = None
    early: list[str] = field(default_factory=list)  # arguments written before the name


@dataclass(frozen=True, slots=True)
class Written:
    """How a forced call is written: `open`, the calls separated by `sep` (None: one call a
    reply), `close`; each call `{"<id>": "0", "<name>": "NAME", "<arguments>": ARGS}`."""

    open: str
    close: str = ""
    sep: str | None = None
    name: str = "name"
    arguments: str = "arguments"
    id: str | None = None


@dataclass(frozen=True, slots=True)
class JsonCalls:
    """Calls as JSON objects after `marker` (and `close` after them, where the family writes
    one). Each object names the tool under one of `names` and has its arguments under one of
    `arguments` (an object, or JSON text in a string); the OpenAI shape, with the call inside
    a "function" object, is read too. `at_start` are markers that count only at the start of
    the reply: there a bare `{` or `[` may start calls (Llama 3.x)."""

    marker: str
    written: Written
    close: str = ""
    at_start: tuple[str, ...] = ()
    names: tuple[str, ...] = ("name",)
    arguments: tuple[str, ...] = ("arguments", "parameters")
    ids: tuple[str, ...] = ("id", "tool_call_id")

    @property
    def openers(self) -> tuple[str, ...]:
        return (self.marker,) if self.marker else ()

    def read(self, scan: Scan, calls: Calls, opener: str) -> Step[bool]:
        if opener not in ("{", "[", ""):
            yield from accept(scan, opener)
            yield from skip_space(scan)
        first = yield from peek(scan)
        if first == "[":
            scan.pos += 1
            if not (yield from self._list(scan, calls)):
                return False
        elif first == "{":
            while True:  # objects one after another, maybe with `;` between (Llama 3.x)
                if not (yield from self._call(scan, calls)):
                    return False
                yield from skip_space(scan)
                if (yield from accept(scan, ";")):
                    yield from skip_space(scan)
                if (yield from peek(scan)) != "{":
                    break
        else:
            return False
        if self.close:
            yield from skip_space(scan)
            yield from accept(scan, self.close)
        return True

    def _list(self, scan: Scan, calls: Calls) -> Step[bool]:
        yield from skip_space(scan)
        if (yield from accept(scan, "]")):
            return True
        while True:
            if not (yield from self._call(scan, calls)):
                return False
            yield from skip_space(scan)
            if (yield from accept(scan, "]")):
                return True
            if not (yield from accept(scan, ",")):
                return False
            yield from skip_space(scan)

    def _call(self, scan: Scan, calls: Calls) -> Step[bool]:
        found = _Found()
        if not (yield from self._fields(scan, calls, found)) or found.name is None:
            return False
        calls.end()
        return True

    def _fields(self, scan: Scan, calls: Calls, found: _Found) -> Step[bool]:
        """Read one object's fields, starting at its `{`, up to its `}`."""
        if not (yield from accept(scan, "{")):
            return False
        while True:
            yield from skip_space(scan)
            if (yield from accept(scan, "}")):
                return True
            key = yield from json_string(scan)
            known = (*self.names, *self.arguments, *self.ids, "type", "function")
            if key not in known:
                return False
            yield from skip_space(scan)
            if not (yield from accept(scan, ":")):
                return False
            yield from skip_space(scan)
            if not (yield from self._value(scan, calls, found, key)):
                return False
            yield from skip_space(scan)
            if (yield from accept(scan, "}")):
                return True
            if not (yield from accept(scan, ",")):
                return False

    def _value(self, scan: Scan, calls: Calls, found: _Found, key: str) -> Step[bool]:
        if key in self.names and found.name is None:
            name = yield from json_string(scan)
            if name is None or not calls.start(name, found.id):
                return False
            found.name = name
            for text in found.early:
                calls.add(text)
            return True
        if key in self.arguments:
            add = calls.add if found.name is not None else found.early.append
            if (yield from peek(scan)) == '"':  # the arguments' JSON text, as a string
                text = yield from json_string(scan)
                if text is not None:
                    add(text)
                return text is not None
            return (yield from json_value(scan, add))
        if key == "function" and (yield from peek(scan)) == "{":
            return (yield from self._fields(scan, calls, found))
        start = scan.pos
        if not (yield from json_value(scan, lambda _: None)):
            return False
        if key in self.ids and found.name is None:
            value = json.loads(scan.text[start : scan.pos])
            found.id = str(value)
        return True

    def rule(self, builder: GrammarBuilder, tools: tuple[Tool, ...], many: bool) -> str:
        w = self.written
        options = []
        for tool in tools:
            head = "{"
            if w.id is not None:
                head += f'"{w.id}": "0", '
            head += f'"{w.name}": {json.dumps(tool.name)}, "{w.arguments}": '
            options.append(f"{literal(head)} {arguments_rule(builder, tool)} {literal('}')}")
        call = builder.rule("call", " | ".join(options))
        calls = repeated(builder, "calls", call, w.sep, many)
        return builder.rule("tool-calls", f"{literal(w.open)} {calls} {literal(w.close)}")
