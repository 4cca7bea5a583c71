"""JSON schema -> GBNF grammars that admit only RFC 8259 JSON a strict parser accepts.

llama-cpp-python's converter (`llama_grammar.SchemaConverter`) lets raw control characters
into strings, writes `\\` in constants and property names unescaped, and copies `pattern`
regexes into the grammar as raw text, so a pattern's `"` or `\\` ends the string early. Our
converter keeps its handling of objects, arrays, numbers and references, and replaces the
three places that produce string content: the string character, literals, and patterns
(translated from Python's own regex parser into JSON-escaped text).
"""

from __future__ import annotations

import json
import re
from re import _constants as sre  # the parse tree's opcodes, as the re module defines them
from re import _parser as sre_parse
from typing import Any

import llama_cpp
from llama_cpp.llama_grammar import JSON_GBNF, BuiltinRule, SchemaConverter, _build_repetition
from localoip.runtimes.capabilities import InputError

HEX = "[0-9a-fA-F]"
# Any code point but `"`, `\`, DEL and controls, or an escape; \u escapes name no surrogate,
# which strict parsers (pydantic's jiter) reject when it stands alone.
CHAR = (
    r'[^"\\\x7F\x00-\x1F] | [\\] (["\\/bfnrt] | "u" ([0-9a-cA-CefEF] '
    + f"{HEX} {HEX} {HEX}"
    + r" | [dD] [0-7] "
    + f"{HEX} {HEX}))"
)
UNSAFE = {*range(0x20), 0x22, 0x5C, 0x7F}  # never raw inside a JSON string here
MAX_CODE = 0x10FFFF
SURROGATES = (0xD800, 0xDFFF)


def literal(text: str) -> str:
    """A GBNF literal that matches exactly `text`."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _code(c: int) -> str:
    return f"\\x{c:02X}" if c < 0x100 else f"\\u{c:04X}" if c < 0x10000 else f"\\U{c:08X}"


def _complement(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out, at = [], 0
    for lo, hi in sorted(ranges):
        if lo > at:
            out.append((at, lo - 1))
        at = max(at, hi + 1)
    if at <= MAX_CODE:
        out.append((at, MAX_CODE))
    return out


def _without(ranges: list[tuple[int, int]], drop: set[int]) -> list[tuple[int, int]]:
    """The ranges minus the code points in `drop` and the surrogates."""
    pieces = list(ranges)
    for a, b in [*((c, c) for c in sorted(drop)), SURROGATES]:
        pieces = [
            part
            for lo, hi in pieces
            for part in ((lo, min(hi, a - 1)), (max(lo, b + 1), hi))
            if part[0] <= part[1]
        ]
    return pieces


CATEGORIES = {
    sre.CATEGORY_DIGIT: [(0x30, 0x39)],
    sre.CATEGORY_WORD: [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)],
    sre.CATEGORY_SPACE: [(0x09, 0x0D), (0x20, 0x20)],
}
NOT_CATEGORIES = {
    sre.CATEGORY_NOT_DIGIT: sre.CATEGORY_DIGIT,
    sre.CATEGORY_NOT_WORD: sre.CATEGORY_WORD,
    sre.CATEGORY_NOT_SPACE: sre.CATEGORY_SPACE,
}


class _StrictConverter(SchemaConverter):
    """llama-cpp-python's converter with JSON-safe strings, literals and patterns."""

    def __init__(self) -> None:
        super().__init__(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)
        self._set_rules: dict[str, str] = {}  # a pattern's character sets, by rule text

    def _format_literal(self, literal_text: str) -> str:
        return literal(literal_text)

    def _add_primitive(self, name: str, rule: BuiltinRule) -> str:
        if name == "char":
            rule = BuiltinRule(CHAR, [])
        return super()._add_primitive(name, rule)

    def _visit_pattern(self, pattern: str, name: str) -> str:
        try:
            tree = sre_parse.parse(pattern)
        except re.error as exc:
            raise ValueError(f"pattern {pattern!r} is not a regular expression: {exc}") from None
        items = list(tree)
        start = bool(items) and items[0] == (sre.AT, sre.AT_BEGINNING)
        end = bool(items) and items[-1] == (sre.AT, sre.AT_END)
        items = items[int(start) : len(items) - int(end)]
        char = self._add_primitive("char", BuiltinRule(CHAR, []))
        body = self._sequence(items, name)
        if not start:  # JSON Schema patterns match anywhere in the string
            body = f"{char}* {body}"
        if not end:
            body = f"{body} {char}*"
        return self._add_rule(name, f'"\\"" {body} "\\"" space')

    def _sequence(self, items: list[Any], name: str) -> str:
        parts = [self._node(op, av, name) for op, av in items]
        return "(" + " ".join(parts) + ")" if parts else '""'

    def _node(self, op: Any, av: Any, name: str) -> str:
        if op is sre.LITERAL:
            return self._codes([(av, av)], name)
        if op is sre.NOT_LITERAL:
            return self._codes(_complement([(av, av)]), name)
        if op is sre.ANY:
            return self._codes(_complement([(0x0A, 0x0A)]), name)
        if op is sre.IN:
            return self._codes(self._class(av), name)
        if op is sre.SUBPATTERN:
            return self._sequence(list(av[-1]), name)
        if op is sre.BRANCH:
            return "(" + " | ".join(self._sequence(list(b), name) for b in av[1]) + ")"
        if op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
            low, high, item = av
            inner = self._sequence(list(item), name)
            return (
                "(" + _build_repetition(inner, low, None if high is sre.MAXREPEAT else high) + ")"
            )
        raise ValueError(f"pattern element {op} is not supported")

    def _class(self, items: list[Any]) -> list[tuple[int, int]]:
        ranges: list[tuple[int, int]] = []
        negate = False
        for op, av in items:
            if op is sre.NEGATE:
                negate = True
            elif op is sre.LITERAL:
                ranges.append((av, av))
            elif op is sre.RANGE:
                ranges.append(av)
            elif op is sre.CATEGORY and av in CATEGORIES:
                ranges += CATEGORIES[av]
            elif op is sre.CATEGORY and av in NOT_CATEGORIES:
                ranges += _complement(CATEGORIES[NOT_CATEGORIES[av]])
            else:
                raise ValueError(f"character class element {op} is not supported")
        return _complement(ranges) if negate else ranges

    def _codes(self, ranges: list[tuple[int, int]], name: str) -> str:
        """Text for any one of these code points inside a JSON string: raw where that is
        allowed, otherwise its JSON escape."""
        safe = _without(ranges, UNSAFE)
        if len(safe) == 1 and safe[0][0] == safe[0][1] and safe == ranges:
            return literal(chr(safe[0][0]))
        alternatives = []
        if safe:
            alternatives.append("[" + "".join(f"{_code(a)}-{_code(b)}" for a, b in safe) + "]")
        for c in sorted(UNSAFE):
            if any(lo <= c <= hi for lo, hi in ranges):
                alternatives.append(literal(json.dumps(chr(c))[1:-1]))
        if not alternatives:
            raise ValueError("a pattern element matches no character")
        rule = " | ".join(alternatives)
        if len(alternatives) == 1:
            return rule
        key = self._set_rules.get(rule)
        if key is None:
            key = self._set_rules[rule] = self._add_rule(f"{name}-set{len(self._set_rules)}", rule)
        return key


class GrammarBuilder:
    """One grammar from several schemas and hand-written rules; each schema gets its rules."""

    def __init__(self) -> None:
        self._converter = _StrictConverter()

    def schema(self, schema: dict[str, Any], name: str, param: str) -> str:
        """Add the rules for values of `schema`; the name of the rule that matches one."""
        if not isinstance(schema, dict):
            raise InputError(f"{param} must be a JSON schema object", param)
        converter = self._converter
        try:
            resolved = converter.resolve_refs(json.loads(json.dumps(schema)), name)
            return converter.visit(resolved, name)
        except (AssertionError, ValueError, KeyError, TypeError, RecursionError) as exc:
            raise InputError(f"{param} cannot be enforced as a grammar: {exc}", param) from None

    def rule(self, name: str, body: str) -> str:
        return self._converter._add_rule(name, body)

    def text(self, root: str) -> str:
        self._converter._rules["root"] = root
        return self._converter.format_grammar()


def compile_grammar(text: str, param: str) -> llama_cpp.LlamaGrammar:
    try:
        return llama_cpp.LlamaGrammar.from_string(text, verbose=False)
    except Exception as exc:  # llama.cpp's parser reports only that it failed
        raise InputError(f"{param} cannot be enforced as a grammar: {exc}", param) from None


def schema_grammar(schema: dict[str, Any], param: str) -> llama_cpp.LlamaGrammar:
    """The grammar of JSON text that is valid against `schema`; {} means any JSON object."""
    if not schema:
        return compile_grammar(JSON_GBNF, param)
    builder = GrammarBuilder()
    rule = builder.schema(schema, "value", param)
    return compile_grammar(builder.text(rule), param)
