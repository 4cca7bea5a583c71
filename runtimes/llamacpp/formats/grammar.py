"""GBNF pieces the formats' forced-call grammars are built from (json_grammar's builder does the
JSON values): text that cannot hold a marker, a tool's arguments, one argument's value."""

from __future__ import annotations

import itertools
from typing import Any

from localoip.runtimes.capabilities import Tool
from localoip.runtimes.llamacpp.json_grammar import GrammarBuilder, literal
from localoip.runtimes.llamacpp.tool_offer import parameters

_names = itertools.count()


def _class_char(ch: str) -> str:
    if ch in "\\]^-[":
        return "\\" + ch
    if ord(ch) < 0x20:
        return f"\\x{ord(ch):02X}"
    return ch


def excluding(builder: GrammarBuilder, marker: str) -> str:
    """A rule for any text that does not hold `marker` (a marker may then follow it).

    One rule per state of a matcher of `marker` (how many of its characters the text ends
    with), so a text that begins the marker and turns away is still taken."""
    fail = [0] * len(marker)  # the longest proper border of marker[: i + 1]
    for i in range(1, len(marker)):
        k = fail[i - 1]
        while k and marker[i] != marker[k]:
            k = fail[k - 1]
        fail[i] = k + (marker[i] == marker[k])

    def step(state: int, ch: str) -> int:
        while state and marker[state] != ch:
            state = fail[state - 1]
        return state + (marker[state] == ch)

    base = f"not-{next(_names)}"
    names = [f"{base}-{s}" for s in range(len(marker))]
    chars = sorted(set(marker))
    for state, name in enumerate(names):
        options = ['""', f"[^{''.join(map(_class_char, chars))}] {names[0]}"]
        for ch in chars:
            target = step(state, ch)
            if target < len(marker):
                options.append(f"{literal(ch)} {names[target]}")
        got = builder.rule(name, " | ".join(options))
        if got != name:
            raise ValueError(f"grammar rule {name} is taken")
    return names[0]


def arguments_rule(builder: GrammarBuilder, tool: Tool) -> str:
    """The rule of a JSON object valid against the tool's arguments schema, as strict as the
    tool says (errors name the request's field for it)."""
    return builder.arguments(tool, parameters(tool))


def is_text(schema: Any) -> bool:
    """Whether a property's schema allows only strings (its value is written bare, not as
    JSON, in the XML call forms)."""
    types = value_types(schema)
    return types == {"string"}


def value_types(schema: Any) -> set[str]:
    """The JSON types a property's schema names (from type, enum, const and anyOf/oneOf
    branches); empty when it names none."""
    if not isinstance(schema, dict):
        return set()
    kinds = schema.get("type")
    types = {kinds} if isinstance(kinds, str) else set(kinds) if isinstance(kinds, list) else set()
    for value in [*schema.get("enum", []), *([schema["const"]] if "const" in schema else [])]:
        types.add(_json_type(value))
    for branch in [*schema.get("anyOf", []), *schema.get("oneOf", [])]:
        types |= value_types(branch)
    return types


def _json_type(value: Any) -> str:
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "null" if value is None else "array" if isinstance(value, list) else "object"


def value_rule(
    builder: GrammarBuilder, tool: Tool, index: int, key: str, schema: Any, end: str
) -> str:
    """The rule of one argument's value in an XML call form, for a string bare: one of its
    enum values, text of its length bounds (without `<`), or else any text up to `end` (its
    pattern or format is not enforced); for another type, JSON valid against its schema."""
    if is_text(schema):
        values = [*schema.get("enum", []), *([schema["const"]] if "const" in schema else [])]
        if values:
            return "(" + " | ".join(literal(v) for v in values) + ")"
        low, high = schema.get("minLength"), schema.get("maxLength")
        if low is not None or high is not None:
            return f"[^<]{{{low or 0},{'' if high is None else high}}}"
        return excluding(builder, end)
    path = f"{builder.names.tool_parameters.format(index)}.properties.{key}"
    value = schema if isinstance(schema, dict) else {}
    return builder.schema(value, f"tool{index}-{key}", path, strict=tool.strict)


def properties(tool: Tool) -> list[tuple[str, Any, bool]]:
    """A tool's arguments as (name, schema, required), in the schema's order."""
    schema = parameters(tool)
    required = set(schema.get("required", []))
    return [(k, v, k in required) for k, v in (schema.get("properties") or {}).items()]


def repeated(builder: GrammarBuilder, name: str, call: str, sep: str | None, many: bool) -> str:
    """One call, or with `many` several separated by `sep` (a format that has no separator
    writes one call a reply)."""
    if many and sep is not None:
        return builder.rule(name, f"{call} ({literal(sep)} {call})*")
    return call
