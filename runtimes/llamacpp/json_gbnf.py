"""GBNF pieces of JSON text that a strict parser accepts (RFC 8259): a grammar's rules, literals,
any JSON value, string formats, and regular expressions as JSON string content.

llama-cpp-python's converter (`llama_grammar.SchemaConverter`) lets raw control characters
into strings, writes `\\` in constants and property names unescaped, and copies `pattern`
regexes into the grammar as raw text, so a pattern's `"` or `\\` ends the string early. Here a
string character is a code point a JSON string may hold raw, or an escape (never of a lone
surrogate, which strict parsers reject), and a pattern is read by Python's own regex parser
and written as JSON-escaped text.
"""

from __future__ import annotations

import json
import re
from re import _constants as sre  # the parse tree's opcodes, as the re module defines them
from re import _parser as sre_parse
from typing import Any

HEX = "[0-9a-fA-F]"
# Any code point but `"`, `\`, DEL and controls, or an escape; \u escapes name no surrogate.
CHAR = (
    r'[^"\\\x7F\x00-\x1F] | [\\] (["\\/bfnrt] | "u" ([0-9a-cA-CefEF] '
    + f"{HEX} {HEX} {HEX}"
    + r" | [dD] [0-7] "
    + f"{HEX} {HEX}))"
)
UNSAFE = {*range(0x20), 0x22, 0x5C, 0x7F}  # never raw inside a JSON string here
MAX_CODE = 0x10FFFF
SURROGATES = (0xD800, 0xDFFF)
_NAME = re.compile(r"[^a-zA-Z0-9-]+")

# Any JSON value; every value rule ends in `space`, as llama.cpp's converter writes them.
PRIMITIVES = {
    "space": '" "?',
    "json-char": CHAR,
    "json-string": '"\\"" json-char* "\\"" space',
    "json-int": "[0] | [1-9] [0-9]{0,15}",
    "json-integer": '"-"? json-int space',
    "json-number": '"-"? json-int ("." [0-9]{1,16})? ([eE] [-+]? [0-9]{1,3})? space',
    "json-boolean": '("true" | "false") space',
    "json-null": '"null" space',
    "json-object": '"{" space (json-string ":" space json-value ("," space json-string ":" space'
    ' json-value)*)? "}" space',
    "json-array": '"[" space (json-value ("," space json-value)*)? "]" space',
    "json-value": "json-object | json-array | json-string | json-number | json-boolean | json-null",
}

_YEAR = "([0-9]{3} [1-9] | [0-9]{2} [1-9] [0-9] | [0-9] [1-9] [0-9]{2} | [1-9] [0-9]{3})"
_LEAP = '("0" [48] | [2468] [048] | [13579] [26])'
_HOUR, _SIXTY = '([01] [0-9] | "2" [0-3])', "[0-5] [0-9]"
# Formats as JSON Schema (RFC 3339) reads them: a date names a day its month has (29 February
# only in leap years), a time has its offset; an email is a plain, bounded subset.
FORMATS = {
    "date": f'({_YEAR} "-" ((("0" [13578] | "1" [02]) "-" ("0" [1-9] | [12] [0-9] | "3" [01]))'
    ' | (("0" [469] | "11") "-" ("0" [1-9] | [12] [0-9] | "30"))'
    ' | ("02-" ("0" [1-9] | "1" [0-9] | "2" [0-8])))'
    f' | ([0-9]{{2}} ("0" [48] | [2468] [048] | [13579] [26]) | {_LEAP} "00") "-02-29")',
    "time": f'{_HOUR} ":" {_SIXTY} ":" {_SIXTY} ("." [0-9]{{1,6}})?'
    f' ("Z" | [+-] {_HOUR} ":" {_SIXTY})',
    "date-time": 'json-format-date "T" json-format-time',
    "uuid": ' "-" '.join(f"{HEX}{{{n}}}" for n in (8, 4, 4, 4, 12)),
    "email": '[A-Za-z0-9_+-]{1,24} ("." [A-Za-z0-9_+-]{1,24}){0,2} "@"'
    ' ([A-Za-z0-9] ([A-Za-z0-9-]{0,20} [A-Za-z0-9])? "."){1,3} [A-Za-z]{2,10}',
}
# Each format's shortest and longest text, to tell whether minLength/maxLength add anything.
FORMAT_LENGTHS = {
    "date": (10, 10),
    "time": (9, 21),
    "date-time": (20, 32),
    "uuid": (36, 36),
    "email": (6, 24 * 3 + 2 + 1 + 23 * 3 + 10),
}


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


def json_literal(value: Any) -> str:
    """A value's JSON text as a GBNF literal, then `space`."""
    return f"{literal(json.dumps(value, ensure_ascii=False))} space"


def repeat(item: str, low: int, high: int | None, separator: str = "") -> str:
    """`item` low to high times (None: no limit), with `separator` between them."""
    if high is not None and high < low:
        raise ValueError(f"no count from {low} to {high}")
    if not separator:
        if high == 0:
            return '""'
        short = {(0, None): "*", (1, None): "+", (0, 1): "?", (1, 1): ""}.get((low, high))
        if short is not None:
            return f"({item}){short}"
        return f"({item}){{{low},{'' if high is None else high}}}"
    if high == 0:
        return '""'
    rest = repeat(f"{separator} {item}", max(low - 1, 0), None if high is None else high - 1)
    return f"({item} {rest})" if low > 0 else f"({item} {rest})?"


class Rules:
    """A grammar's rules by name; a name is made unique, and the same body keeps one name."""

    def __init__(self) -> None:
        self._rules: dict[str, str] = dict(PRIMITIVES)
        self._by_body: dict[str, str] = {}

    def add(self, name: str, body: str) -> str:
        """Add a rule (named after `name`); the name it got."""
        known = self._by_body.get(body)
        if known is not None:
            return known
        key = self.reserve(name)
        self.define(key, body)
        return key

    def reserve(self, name: str) -> str:
        """A new unique name after `name`, defined later (a recursive reference's rule)."""
        base = _NAME.sub("-", name).strip("-") or "rule"
        key, n = base, 0
        while key in self._rules:
            n += 1
            key = f"{base}-{n}"
        self._rules[key] = ""
        return key

    def define(self, key: str, body: str) -> None:
        self._rules[key] = body
        self._by_body.setdefault(body, key)

    def format(self, name: str) -> str:
        """The rule that matches text of `name` (date, time, date-time, uuid, email)."""
        key = f"json-format-{name}"
        if key not in self._rules:
            self._rules[key] = FORMATS[name]
            if name == "date-time":
                self.format("date")
                self.format("time")
        return key

    def text(self, root: str) -> str:
        """The grammar, starting from the expression `root`."""
        rules = {**self._rules, "root": root}
        return "\n".join(f"{name} ::= {body}" for name, body in rules.items() if body)


# -- regular expressions as JSON string content --------------------------------------------

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


def anchored_width(pattern: str) -> tuple[int, int | None] | None:
    """The least and most characters a pattern anchored at both ends (^...$) matches (None:
    no most); None for a pattern not anchored at both ends, or not a regular expression."""
    try:
        items = list(sre_parse.parse(pattern))
    except re.error:
        return None
    if (
        len(items) < 2
        or items[0] != (sre.AT, sre.AT_BEGINNING)
        or items[-1] != (sre.AT, sre.AT_END)
    ):
        return None
    low, high = sre_parse.parse(pattern).getwidth()
    return low, None if high >= sre.MAXREPEAT else high


class Pattern:
    """A `pattern` (Python's regex syntax, as jsonschema checks it) as the content of a JSON
    string: characters a string may not hold raw are written as their escapes. Lookarounds,
    backreferences and anchors inside the pattern raise ValueError."""

    def __init__(self, rules: Rules, name: str) -> None:
        self._rules = rules
        self._name = name

    def string(self, pattern: str) -> str:
        """The rule for a JSON string (quotes and trailing space included) the pattern
        matches; unanchored ends admit any characters, as JSON Schema's patterns do."""
        try:
            tree = sre_parse.parse(pattern)
        except re.error as exc:
            raise ValueError(f"pattern {pattern!r} is not a regular expression: {exc}") from None
        items = list(tree)
        start = bool(items) and items[0] == (sre.AT, sre.AT_BEGINNING)
        end = bool(items) and items[-1] == (sre.AT, sre.AT_END)
        body = self._sequence(items[int(start) : len(items) - int(end)])
        if not start:
            body = f"json-char* {body}"
        if not end:
            body = f"{body} json-char*"
        return self._rules.add(self._name, f'"\\"" {body} "\\"" space')

    def _sequence(self, items: list[Any]) -> str:
        parts = [self._node(op, av) for op, av in items]
        return "(" + " ".join(parts) + ")" if parts else '""'

    def _node(self, op: Any, av: Any) -> str:
        if op is sre.LITERAL:
            return self._codes([(av, av)])
        if op is sre.NOT_LITERAL:
            return self._codes(_complement([(av, av)]))
        if op is sre.ANY:
            return self._codes(_complement([(0x0A, 0x0A)]))
        if op is sre.IN:
            return self._codes(self._class(av))
        if op is sre.SUBPATTERN:
            return self._sequence(list(av[-1]))
        if op is sre.BRANCH:
            return "(" + " | ".join(self._sequence(list(b)) for b in av[1]) + ")"
        if op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
            low, high, item = av
            return repeat(self._sequence(list(item)), low, None if high is sre.MAXREPEAT else high)
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

    def _codes(self, ranges: list[tuple[int, int]]) -> str:
        """Any one of these code points inside a JSON string: raw where that is allowed,
        otherwise its JSON escape."""
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
        if len(alternatives) == 1:
            return alternatives[0]
        return self._rules.add(f"{self._name}-set", " | ".join(alternatives))
