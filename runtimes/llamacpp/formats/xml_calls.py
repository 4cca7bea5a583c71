"""Tool calls written as tags with one argument per tag, values bare and typed by the tool's
schema: Qwen3-Coder's `<function=NAME><parameter=KEY>value</parameter></function>` and
GLM-4.5's `<tool_call>NAME<arg_key>KEY</arg_key><arg_value>value</arg_value></tool_call>`.
The arguments stream as JSON text, one argument at a time."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from localoip.runtimes.capabilities import Tool
from localoip.runtimes.llamacpp.formats.grammar import properties, repeated, value_rule, value_types
from localoip.runtimes.llamacpp.formats.output import Calls
from localoip.runtimes.llamacpp.formats.scan import Scan, Step, accept, skip_space, until
from localoip.runtimes.llamacpp.json_grammar import GrammarBuilder, literal
from localoip.runtimes.llamacpp.tool_offer import parameters


def typed(tool: Tool, key: str, text: str) -> Any:
    """An argument's bare text as the value its schema asks for: kept as text where the
    schema allows only strings, or names no type and the text is not a JSON object or list;
    otherwise the JSON it spells, when it spells one."""
    schema = (parameters(tool).get("properties") or {}).get(key, {})
    types = value_types(schema)
    if types == {"string"}:
        return text
    try:
        value = json.loads(text)
    except ValueError:
        return text
    if not types and not isinstance(value, dict | list):
        return text
    return value


END_VALUE = "</arg_value>\n"


class _Arguments:
    """A call's arguments streamed as a JSON object, one argument at a time."""

    def __init__(self, calls: Calls, tool: Tool) -> None:
        self.calls, self.tool, self.count = calls, tool, 0

    def add(self, key: str, text: str) -> None:
        value = json.dumps(typed(self.tool, key, text), ensure_ascii=False)
        self.calls.add(f"{'{' if self.count == 0 else ', '}{json.dumps(key)}: {value}")
        self.count += 1

    def end(self) -> None:
        self.calls.add("}" if self.count else "{}")
        self.calls.end()


def _one_newline(text: str) -> str:
    """The text without the one newline the template puts on each side of a value."""
    text = text[1:] if text.startswith("\n") else text
    return text[:-1] if text.endswith("\n") else text


@dataclass(frozen=True, slots=True)
class Qwen3CoderCalls:
    """`<tool_call>\\n<function=NAME>\\n<parameter=KEY>\\nvalue\\n</parameter>\\n...
    </function>\\n</tool_call>`, one block per call (a block may lack `<tool_call>`)."""

    at_start: tuple[str, ...] = ()

    @property
    def openers(self) -> tuple[str, ...]:
        return ("<tool_call>", "<function=")

    def read(self, scan: Scan, calls: Calls, opener: str) -> Step[bool]:
        if (yield from accept(scan, "<tool_call>")):
            yield from skip_space(scan)
        if not (yield from accept(scan, "<function=")):
            return False
        name = yield from until(scan, (">",))
        if name is None or not calls.start(name[0].strip()):
            return False
        args = _Arguments(calls, calls.tools[name[0].strip()])
        while True:
            yield from skip_space(scan)
            if (yield from accept(scan, "</function>")):
                break
            if not (yield from accept(scan, "<parameter=")):
                return False
            key = yield from until(scan, (">",))
            value = yield from until(scan, ("</parameter>", "<parameter=", "</function>"), False)
            if key is None or value is None:
                return False
            yield from accept(scan, "</parameter>")
            args.add(key[0].strip(), _one_newline(value[0]))
        args.end()
        yield from skip_space(scan)
        yield from accept(scan, "</tool_call>")
        return True

    def rule(self, builder: GrammarBuilder, tools: tuple[Tool, ...], many: bool) -> str:
        options = []
        for i, tool in enumerate(tools):
            parts = [literal(f"<tool_call>\n<function={tool.name}>\n")]
            for key, schema, required in properties(tool):
                value = value_rule(builder, tool, i, key, schema, "\n</parameter>")
                head, tail = literal(f"<parameter={key}>\n"), literal("\n</parameter>\n")
                part = f"{head} {value} {tail}"
                parts.append(part if required else f"({part})?")
            parts.append(literal("</function>\n</tool_call>"))
            options.append(" ".join(parts))
        call = builder.rule("call", " | ".join(options))
        return repeated(builder, "calls", call, "\n", many)


@dataclass(frozen=True, slots=True)
class GlmCalls:
    """`<tool_call>NAME\\n<arg_key>KEY</arg_key>\\n<arg_value>value</arg_value>\\n...
    </tool_call>`, one block per call."""

    at_start: tuple[str, ...] = ()

    @property
    def openers(self) -> tuple[str, ...]:
        return ("<tool_call>",)

    def read(self, scan: Scan, calls: Calls, opener: str) -> Step[bool]:
        yield from accept(scan, "<tool_call>")
        name = yield from until(scan, ("\n", "<arg_key>", "</tool_call>"), False)
        if name is None or not calls.start(name[0].strip()):
            return False
        args = _Arguments(calls, calls.tools[name[0].strip()])
        while True:
            yield from skip_space(scan)
            if (yield from accept(scan, "</tool_call>")):
                break
            if not (yield from accept(scan, "<arg_key>")):
                return False
            key = yield from until(scan, ("</arg_key>",))
            yield from skip_space(scan)
            if key is None or not (yield from accept(scan, "<arg_value>")):
                return False
            value = yield from until(scan, ("</arg_value>",))
            if value is None:
                return False
            args.add(key[0].strip(), value[0])
        args.end()
        return True

    def rule(self, builder: GrammarBuilder, tools: tuple[Tool, ...], many: bool) -> str:
        options = []
        for i, tool in enumerate(tools):
            parts = [literal(f"<tool_call>{tool.name}\n")]
            for key, schema, required in properties(tool):
                value = value_rule(builder, tool, i, key, schema, "</arg_value>")
                head = literal(f"<arg_key>{key}</arg_key>\n<arg_value>")
                part = f"{head} {value} {literal(END_VALUE)}"
                parts.append(part if required else f"({part})?")
            parts.append(literal("</tool_call>"))
            options.append(" ".join(parts))
        call = builder.rule("call", " | ".join(options))
        return repeated(builder, "calls", call, "\n", many)
