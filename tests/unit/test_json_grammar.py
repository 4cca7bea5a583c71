"""JSON Schema -> GBNF (runtimes/llamacpp/json_grammar.py and its parts): bounded numbers and
dates written exactly, and every keyword the grammar cannot enforce refused by name.

Grammars without recursion are read here as Python regular expressions (their GBNF is the
regex subset: literals, classes, groups, alternatives and repetition), so a range or a format
is checked value by value; whole schemas run through llama.cpp in tests/api."""

from __future__ import annotations

import datetime
import re
from decimal import Decimal

import pytest
from localoip.runtimes.capabilities import InputError, Tool
from localoip.runtimes.llamacpp.json_gbnf import Rules
from localoip.runtimes.llamacpp.json_grammar import GrammarBuilder
from localoip.runtimes.llamacpp.json_numbers import decimals, integers

TOKEN = re.compile(r'\s+|"(?:[^"\\]|\\.)*"|\[(?:[^\]\\]|\\.)*\]|\{\d*,?\d*\}|[()|?*+]|[\w-]+')


def regex(grammar: str, rule: str = "root") -> re.Pattern[str]:
    """A GBNF grammar without recursion as a Python regex matching what `rule` matches."""
    rules = dict(line.split(" ::= ", 1) for line in grammar.splitlines())

    def convert(body: str) -> str:
        out = []
        for token in TOKEN.findall(body):
            if token.isspace():
                continue
            if token.startswith('"'):
                text = token[1:-1].encode().decode("unicode_escape")
                out.append(re.escape(text))
            elif token.startswith("["):
                out.append(token)
            elif token.startswith("{"):
                out.append(token.replace("{,", "{0,"))
            elif token in "()|?*+":
                out.append("(?:" if token == "(" else token)
            else:
                out.append(f"(?:{convert(rules[token])})")
        return "".join(out)

    return re.compile(convert(rules[rule]))


def grammar_of(body: str) -> re.Pattern[str]:
    return regex(Rules().text(body))


@pytest.mark.parametrize(
    ("lo", "hi"),
    [(0, 1), (-20, 249), (7, 7), (-250, -13), (95, 1234), (None, 12), (-3, None), (100, None)],
)
def test_integer_ranges_hold_exactly_the_integers_within(lo, hi):
    pattern = grammar_of(integers(lo, hi))
    for n in range(-400, 1400):
        inside = (lo is None or n >= lo) and (hi is None or n <= hi)
        assert bool(pattern.fullmatch(str(n))) is inside, n
    assert not pattern.fullmatch("007") and not pattern.fullmatch("-0")
    if hi is None:
        assert pattern.fullmatch("9" * 16) and not pattern.fullmatch("9" * 17)


BOUNDS = [
    ("0", "1", False, False),
    ("0", "1", True, True),
    ("-1.5", "2", False, False),
    ("-10", "-2", True, False),
    ("0.5", "2.5", False, False),
    ("-3", None, False, False),
    (None, "0", False, True),
]


@pytest.mark.parametrize(("lo", "hi", "lo_open", "hi_open"), BOUNDS)
def test_decimals_stay_within_their_bounds(lo, hi, lo_open, hi_open):
    low = None if lo is None else Decimal(lo)
    high = None if hi is None else Decimal(hi)
    args = [None if lo_open else low, None if hi_open else high]
    args += [low if lo_open else None, high if hi_open else None]
    pattern = grammar_of(decimals(*args))
    matched = 0
    for step in range(-1200, 1200):
        for text in (f"{step / 100:.2f}".rstrip("0").rstrip("."), f"{step / 100:.2f}"):
            if not pattern.fullmatch(text):
                continue
            matched += 1
            value = Decimal(text)
            assert low is None or value > low or (value == low and not lo_open), text
            assert high is None or value < high or (value == high and not hi_open), text
    assert matched > 10
    assert not pattern.fullmatch("1e3") and not pattern.fullmatch("-0")


def test_a_number_range_the_grammar_cannot_write_is_refused():
    builder = GrammarBuilder()
    schema = {"type": "number", "exclusiveMinimum": 1, "maximum": 1.5}
    with pytest.raises(InputError, match=r"'maximum' at #: no decimal between 1 and 1\.5"):
        builder.schema(schema, "value", "response_format")


@pytest.mark.parametrize(
    ("fmt", "valid"),
    [
        ("date", lambda t: datetime.date.fromisoformat(t)),
        ("time", lambda t: datetime.time.fromisoformat(t.replace("Z", "+00:00"))),
    ],
)
def test_formats_hold_exactly_the_days_and_times_that_exist(fmt, valid):
    builder = GrammarBuilder()
    pattern = regex(builder.text(builder.schema({"type": "string", "format": fmt}, "v", "f")))
    if fmt == "date":
        texts = [
            f"{y}-{m:02}-{d:02}"
            for y in ("0000", "0004", "1900", "1999", "2000", "2024", "9999")
            for m in range(0, 14)
            for d in range(0, 33)
        ]
    else:
        texts = [f"{h:02}:{m:02}:{s:02}{z}" for h in (0, 9, 23, 24) for m in (0, 59, 60)
                 for s in (0, 59, 61) for z in ("Z", "+05:30", "-23:59", "", "+24:00")]  # fmt: skip
    for text in texts:
        try:
            expected = bool(valid(text)) and (fmt != "time" or text[8:] != "")
        except ValueError:
            expected = False
        assert bool(pattern.fullmatch(f'"{text}"')) is expected, text


REFUSED = [
    ({"type": "array", "items": {"type": "integer"}, "uniqueItems": True}, "uniqueItems"),
    ({"type": "integer", "multipleOf": 5}, "multipleOf"),
    ({"not": {"type": "string"}}, "not"),
    ({"type": "object", "if": {"required": ["a"]}, "then": {"required": ["b"]}}, "if"),
    ({"type": "object", "patternProperties": {"^x": {"type": "string"}}}, "patternProperties"),
    (
        {"type": "object", "properties": {"a": {"type": "string"}}, "maxProperties": 1},
        "maxProperties",
    ),
    ({"type": "array", "contains": {"const": 1}}, "contains"),
    ({"type": "string", "format": "hostname"}, "format"),
    ({"type": "string", "pattern": "(?=a)b"}, "pattern"),
    ({"type": "string", "pattern": "^a+", "maxLength": 4}, "maxLength"),
    ({"type": "string", "format": "email", "maxLength": 20}, "maxLength"),
    ({"oneOf": [{"type": "number"}, {"type": "integer"}]}, "oneOf"),
    ({"$ref": "https://example.com/schema.json"}, "$ref"),
    ({"$ref": "#/$defs/missing"}, "$ref"),
    ({"type": "integer", "minimum": 5, "maximum": 4}, "minimum"),
    ({"enum": ["a", "b"], "type": "integer"}, "enum"),
    ({"type": "object", "required": ["x"], "additionalProperties": False}, "required"),
]


@pytest.mark.parametrize(("schema", "keyword"), REFUSED)
def test_a_keyword_the_grammar_cannot_enforce_is_refused_by_name(schema, keyword):
    with pytest.raises(InputError) as refused:
        GrammarBuilder().schema(schema, "value", "response_format")
    assert refused.value.param == "response_format"
    assert f"{keyword!r}" in str(refused.value)


@pytest.mark.parametrize(("schema", "keyword"), REFUSED[:13])
def test_a_lenient_tool_drops_what_it_cannot_enforce(schema, keyword):
    tool = Tool("f", parameters={"type": "object", "properties": {"x": schema}}, strict=False)
    builder = GrammarBuilder(tools=(tool,))
    assert builder.arguments(tool, tool.parameters)
    strict = Tool("f", parameters=tool.parameters, strict=True)
    with pytest.raises(InputError) as refused:
        GrammarBuilder(tools=(tool, strict)).arguments(strict, strict.parameters)
    assert refused.value.param == "tools[1].function.parameters" and keyword in str(refused.value)


def test_one_of_with_a_discriminator_is_enforced():
    cat = {"properties": {"kind": {"const": "cat"}}, "required": ["kind"]}
    dog = {"properties": {"kind": {"const": "dog"}}, "required": ["kind"]}
    builder = GrammarBuilder()
    rule = builder.schema({"type": "object", "oneOf": [cat, dog]}, "value", "response_format")
    pattern = regex(builder.text(rule))
    assert pattern.fullmatch('{"kind":"cat"}') and pattern.fullmatch('{ "kind": "dog" }')
    assert not pattern.fullmatch('{"kind":"cow"}')


def test_all_of_merges_properties_bounds_and_closes_out_what_it_must():
    schema = {
        "allOf": [
            {"type": "object", "properties": {"n": {"type": "integer", "maximum": 9}}},
            {"properties": {"n": {"minimum": 3}, "s": {"type": "string"}}, "required": ["n"]},
        ],
    }
    builder = GrammarBuilder()
    pattern = regex(builder.text(builder.schema(schema, "value", "response_format")))
    assert pattern.fullmatch('{"n":3}') and pattern.fullmatch('{"n":9,"s":"x"}')
    assert not pattern.fullmatch('{"n":2}') and not pattern.fullmatch('{"n":10}')
    assert not pattern.fullmatch('{"s":"x"}')


def test_additional_properties_by_schema_never_reuse_a_declared_name():
    schema = {
        "type": "object",
        "properties": {"ab": {"type": "boolean"}},
        "additionalProperties": {"type": "integer", "minimum": 0, "maximum": 3},
    }
    builder = GrammarBuilder()
    pattern = regex(builder.text(builder.schema(schema, "value", "response_format")))
    assert pattern.fullmatch('{"ab":true,"a":1,"abc":2,"":3}')
    assert pattern.fullmatch('{"x":0}') and pattern.fullmatch("{}")
    assert not pattern.fullmatch('{"ab":true,"ab":1}') and not pattern.fullmatch('{"x":4}')


@pytest.mark.parametrize("declared", [5, {"a": 1}, [["string"]], ["string", 5]])
def test_a_type_that_is_no_name_or_list_of_names_is_refused(declared):
    with pytest.raises(InputError) as refused:
        GrammarBuilder().schema({"type": declared}, "value", "format")
    assert refused.value.param == "format" and "names no JSON type" in str(refused.value)
