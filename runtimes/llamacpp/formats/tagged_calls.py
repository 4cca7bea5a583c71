"""Tool calls whose name and JSON arguments sit between special markers: Mistral's
`[TOOL_CALLS]name[ARGS]{...}` (and its JSON-list form), DeepSeek R1 and V3.1, Kimi K2."""

# ruff: noqa: RUF001, RUF002  (DeepSeek's markers are spelled with fullwidth bars)
from __future__ import annotations

from dataclasses import dataclass

from localoip.runtimes.capabilities import Tool
from localoip.runtimes.llamacpp.formats.grammar import arguments_rule, repeated
from localoip.runtimes.llamacpp.formats.json_calls import JsonCalls
from localoip.runtimes.llamacpp.formats.output import Calls
from localoip.runtimes.llamacpp.formats.scan import (
    Scan,
    Step,
    accept,
    json_value,
    peek,
    skip_space,
    until,
)
from localoip.runtimes.llamacpp.json_grammar import GrammarBuilder, literal


def _rule(
    builder: GrammarBuilder,
    tools: tuple[Tool, ...],
    head: str,
    tail: str,
    outer: tuple[str, str] = ("", ""),
    sep: str | None = None,
    many: bool = False,
) -> str:
    """Calls written `head` (with NAME in it) ARGS `tail`, one per tool, between `outer`."""
    options = []
    for tool in tools:
        written = head.replace("NAME", tool.name)
        args = arguments_rule(builder, tool)
        options.append(f"{literal(written)} {args} {literal(tail)}")
    call = builder.rule("call", " | ".join(options))
    calls = repeated(builder, "calls", call, sep, many)
    return builder.rule("tool-calls", f"{literal(outer[0])} {calls} {literal(outer[1])}")


@dataclass(frozen=True, slots=True)
class MistralCalls:
    """`[TOOL_CALLS]name[ARGS]{...}` (maybe `[CALL_ID]id` before `[ARGS]`), once per call; or
    the older `[TOOL_CALLS][{"name": ..., "arguments": {...}}, ...]`. `named` says which form
    a forced call is written in."""

    named: bool
    listed: JsonCalls
    at_start: tuple[str, ...] = ()

    @property
    def openers(self) -> tuple[str, ...]:
        return ("[TOOL_CALLS]",)

    def read(self, scan: Scan, calls: Calls, opener: str) -> Step[bool]:
        yield from accept(scan, "[TOOL_CALLS]")
        yield from skip_space(scan)
        if (yield from peek(scan)) in ("[", "{"):
            return (yield from self.listed.read(scan, calls, ""))
        found = yield from until(scan, ("[ARGS]", "[CALL_ID]"))
        if found is None:
            return False
        written = None
        if found[1] == "[CALL_ID]":
            given = yield from until(scan, ("[ARGS]",))
            if given is None:
                return False
            written = given[0].strip()
        if not calls.start(found[0].strip(), written):
            return False
        yield from skip_space(scan)
        return (yield from json_value(scan, calls.add))

    def rule(self, builder: GrammarBuilder, tools: tuple[Tool, ...], many: bool) -> str:
        if not self.named:
            return self.listed.rule(builder, tools, many)
        return _rule(builder, tools, "[TOOL_CALLS]NAME[ARGS]", "", sep="", many=many)


DS_CALLS = "<｜tool▁calls▁begin｜>"
DS_CALLS_END = "<｜tool▁calls▁end｜>"
DS_CALL = "<｜tool▁call▁begin｜>"
DS_CALL_END = "<｜tool▁call▁end｜>"
DS_SEP = "<｜tool▁sep｜>"


@dataclass(frozen=True, slots=True)
class DeepSeekCalls:
    """DeepSeek's calls between `<｜tool▁calls▁begin｜>` and `<｜tool▁calls▁end｜>`: R1 writes
    `<｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME` and the arguments in a ```json block,
    V3.1 `<｜tool▁call▁begin｜>NAME<｜tool▁sep｜>{...}`; each ends `<｜tool▁call▁end｜>`.
    `v31` says which form a forced call is written in."""

    v31: bool = False
    at_start: tuple[str, ...] = ()

    @property
    def openers(self) -> tuple[str, ...]:
        return (DS_CALLS, DS_CALL)

    def read(self, scan: Scan, calls: Calls, opener: str) -> Step[bool]:
        yield from accept(scan, DS_CALLS)
        count = 0
        while True:
            yield from skip_space(scan)
            if (yield from accept(scan, DS_CALLS_END)):
                return True
            if not (yield from accept(scan, DS_CALL)):
                return count > 0
            head = yield from until(scan, (DS_SEP,))
            if head is None:
                return False
            name, fenced = head[0].strip(), False
            if name == "function" and (yield from peek(scan)) != "{":
                line = yield from until(scan, ("\n",))
                if line is None:
                    return False
                name, fenced = line[0].strip(), True
            if not calls.start(name):
                return False
            yield from skip_space(scan)
            if fenced:
                yield from accept(scan, "```json")
                yield from skip_space(scan)
            if not (yield from json_value(scan, calls.add)):
                return False
            calls.end()
            yield from skip_space(scan)
            if fenced:
                yield from accept(scan, "```")
                yield from skip_space(scan)
            if not (yield from accept(scan, DS_CALL_END)):
                return False
            count += 1

    def rule(self, builder: GrammarBuilder, tools: tuple[Tool, ...], many: bool) -> str:
        outer = (DS_CALLS, DS_CALLS_END)
        if self.v31:
            return _rule(builder, tools, f"{DS_CALL}NAME{DS_SEP}", DS_CALL_END, outer, "", many)
        head = f"{DS_CALL}function{DS_SEP}NAME\n```json\n"
        return _rule(builder, tools, head, f"\n```{DS_CALL_END}", outer, "\n", many)


KIMI_SECTION = "<|tool_calls_section_begin|>"
KIMI_SECTION_END = "<|tool_calls_section_end|>"
KIMI_CALL = "<|tool_call_begin|>"
KIMI_ARGS = "<|tool_call_argument_begin|>"
KIMI_CALL_END = "<|tool_call_end|>"


@dataclass(frozen=True, slots=True)
class KimiCalls:
    """Kimi K2's section of calls, each `<|tool_call_begin|>functions.NAME:INDEX
    <|tool_call_argument_begin|>{...}<|tool_call_end|>`; the written id is the call's id."""

    at_start: tuple[str, ...] = ()

    @property
    def openers(self) -> tuple[str, ...]:
        return (KIMI_SECTION, KIMI_CALL)

    def read(self, scan: Scan, calls: Calls, opener: str) -> Step[bool]:
        yield from accept(scan, KIMI_SECTION)
        count = 0
        while True:
            yield from skip_space(scan)
            if (yield from accept(scan, KIMI_SECTION_END)):
                return True
            if not (yield from accept(scan, KIMI_CALL)):
                return count > 0
            head = yield from until(scan, (KIMI_ARGS,))
            if head is None:
                return False
            written = head[0].strip()
            name = written.removeprefix("functions.")
            name = name.rpartition(":")[0] or name
            if not calls.start(name, written):
                return False
            yield from skip_space(scan)
            if not (yield from json_value(scan, calls.add)):
                return False
            calls.end()
            yield from skip_space(scan)
            if not (yield from accept(scan, KIMI_CALL_END)):
                return False
            count += 1

    def rule(self, builder: GrammarBuilder, tools: tuple[Tool, ...], many: bool) -> str:
        head = f"{KIMI_CALL}functions.NAME:0{KIMI_ARGS}"
        outer = (KIMI_SECTION, KIMI_SECTION_END)
        return _rule(builder, tools, head, KIMI_CALL_END, outer, "", many)
