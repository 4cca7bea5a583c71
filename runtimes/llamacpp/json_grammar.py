"""JSON Schema -> GBNF grammars whose every sentence is JSON text valid against the schema.

Each keyword is enforced or refused. A strict schema (response_format, Responses text.format,
a tool with `strict`) with a keyword the grammar cannot enforce is an InputError (a 400)
naming it and where it is: json_schemas.REFUSED, a format other than date, time, date-time,
uuid and email, a length beside an unanchored pattern, oneOf branches that may overlap, a
$ref that is not local. A lenient schema (a tool without `strict`) drops those and enforces the
rest. Where a keyword admits more values than the grammar writes, the grammar writes some of
them, never one outside: numbers within json_numbers' digit limits, only the declared
properties when additionalProperties is absent. Recursion goes through rule references: a
$ref's target is one rule, whatever refers to it.

llama-cpp-python 0.3.36 ships a Python port of llama.cpp's converter (`llama_grammar`); it
ignores integer and number bounds, formats it does not know, and a length beside a pattern,
reads oneOf as anyOf, and accepts 31 February, so it is not wrapped; json_gbnf, json_numbers
and json_schemas hold this converter's parts.
"""

from __future__ import annotations

import itertools
import json
from decimal import Decimal
from typing import Any

import llama_cpp
from localoip.runtimes.capabilities import FieldNames, InputError, Tool
from localoip.runtimes.llamacpp.json_gbnf import (
    FORMAT_LENGTHS,
    FORMATS,
    Pattern,
    Rules,
    anchored_width,
    json_literal,
    literal,
    repeat,
)
from localoip.runtimes.llamacpp.json_numbers import EmptyRange, decimals, integer_bounds, integers
from localoip.runtimes.llamacpp.json_schemas import (
    ANNOTATIONS,
    REFUSED,
    TYPES,
    Reader,
    Unenforceable,
    admits,
    same_value,
    types_of,
)

__all__ = ["GrammarBuilder", "compile_grammar", "literal", "schema_grammar"]

BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
# What a constant beside const/enum is checked for (json_schemas.admits).
CHECKED = {"type", "const", "enum", *BOUNDS, "minLength", "maxLength", "pattern"}
CHECKED |= {"minItems", "maxItems", "required"}
CHAT_NAMES = FieldNames()
KEY_CHAR = '[^"\\\\\\x7F\\x00-\\x1F]'  # a property name's character: raw, no escapes
END = ""


class _Converter:
    """One schema's rules, added to a shared Rules."""

    def __init__(self, rules: Rules, reader: Reader, name: str) -> None:
        self.rules = rules
        self.reader = reader
        self.name = name
        self._refs: dict[str, str] = {}  # a $ref's key -> its rule

    def value(self, schema: Any, name: str, path: str) -> str:
        """The rule (or expression) for JSON values valid against `schema`."""
        if schema is True or schema == {}:
            return "json-value"
        if not isinstance(schema, dict):
            raise Unenforceable("false" if schema is False else "schema", path, "admits no value")
        asserted = schema.keys() - ANNOTATIONS
        if asserted == {"$ref"}:
            return self._reference(schema["$ref"], path)
        if asserted & {"$ref", "allOf"}:
            schema = self.reader.flatten(schema, path)
        for keyword in sorted(REFUSED.keys() & schema.keys()):
            if not (keyword == "uniqueItems" and schema[keyword] is False):
                self.reader.refuse(keyword, path, REFUSED[keyword])
        if "anyOf" in schema or "oneOf" in schema:
            return self._union(schema, name, path)
        if "const" in schema or "enum" in schema:
            return self._constants(schema, name, path)
        types = types_of(schema)
        if types is None:
            return "json-value"
        if not types or types - set(TYPES):
            raise Unenforceable("type", path, f"{schema['type']!r} names no JSON type")
        if "number" in types:
            types.discard("integer")  # a number's grammar writes integers too
        ordered = [t for t in TYPES if t in types]
        alternatives = [
            self._typed(t, schema, f"{name}-{t}" if len(ordered) > 1 else name, path)
            for t in ordered
        ]
        return alternatives[0] if len(alternatives) == 1 else self._add(name, alternatives)

    def _add(self, name: str, alternatives: list[str]) -> str:
        return self.rules.add(name, " | ".join(alternatives))

    def _reference(self, ref: Any, path: str) -> str:
        key, target = self.reader.target(ref, path)
        known = self._refs.get(key)
        if known is not None:
            return known
        rule = self._refs[key] = self.rules.reserve(f"{self.name}-{key.rsplit('/', 1)[-1]}")
        self.rules.define(rule, self.value(target, f"{rule}-value", key))
        return rule

    def _union(self, schema: dict[str, Any], name: str, path: str) -> str:
        kind = "oneOf" if "oneOf" in schema else "anyOf"
        if "oneOf" in schema and "anyOf" in schema:
            self.reader.refuse("oneOf", path, "anyOf and oneOf together are not enforced")
            kind = "anyOf"
        rest = {k: v for k, v in schema.items() if k not in ("anyOf", "oneOf", *ANNOTATIONS)}
        branches = [{"allOf": [rest, b]} if rest else b for b in schema[kind]]
        if not branches:
            raise Unenforceable(kind, path, "an empty union admits no value")
        if kind == "oneOf":
            flat = [self.reader.flatten(b, f"{path}/oneOf/{i}") for i, b in enumerate(branches)]
            for i, j in itertools.combinations(range(len(flat)), 2):
                if not self.reader.disjoint(flat[i], flat[j], path):
                    why = f"branches {i} and {j} may both match, and oneOf allows only one"
                    self.reader.refuse("oneOf", path, why)
                    break
        alternatives = [
            self.value(b, f"{name}-{i}", f"{path}/{kind}/{i}") for i, b in enumerate(branches)
        ]
        return self._add(name, alternatives)

    def _constants(self, schema: dict[str, Any], name: str, path: str) -> str:
        keyword = "const" if "const" in schema else "enum"
        values = [schema["const"]] if "const" in schema else list(schema["enum"])
        if "const" in schema and "enum" in schema:
            values = [v for v in values if any(same_value(v, e) for e in schema["enum"])]
        for other in sorted(schema.keys() - CHECKED - ANNOTATIONS - REFUSED.keys()):
            self.reader.refuse(other, path, f"beside {keyword}, only {sorted(CHECKED)} count")
        values = [v for v in values if admits(schema, v)]
        if not values:
            raise Unenforceable(keyword, path, "no value it lists meets the schema")
        return self._add(name, [json_literal(v) for v in values])

    def _typed(self, kind: str, schema: dict[str, Any], name: str, path: str) -> str:
        if kind in ("null", "boolean"):
            return f"json-{kind}"
        if kind in ("integer", "number"):
            return _number(self.rules, kind, schema, name, path)
        if kind == "string":
            return _string(self.rules, self.reader, schema, name, path)
        if kind == "array":
            return self._array(schema, name, path)
        return self._object(schema, name, path)

    def _array(self, schema: dict[str, Any], name: str, path: str) -> str:
        items = schema.get("items")
        if isinstance(items, list):  # draft 7's tuples
            prefix, rest = items, schema.get("additionalItems")
        else:
            prefix, rest = schema.get("prefixItems", []), items
        low, high = schema.get("minItems", 0), schema.get("maxItems")
        count = len(prefix) if high is None else min(len(prefix), high)
        if rest is False and low > count:
            raise Unenforceable("minItems", path, "more items than the tuple allows")
        extra_low = max(0, low - count)
        extra_high: int | None = 0
        if rest is not False and (not prefix or rest is not None):
            extra_high = None if high is None else high - count
        elif rest is None:  # a tuple whose extra items are not described: only the least
            extra_high = extra_low
        if extra_high is not None and extra_high < extra_low:
            raise Unenforceable("maxItems", path, "fewer items than minItems asks for")
        parts = [
            self.value(p, f"{name}-{i}", f"{path}/prefixItems/{i}")
            for i, p in enumerate(prefix[:count])
        ]
        item = "json-value" if rest in (None, True) else None
        if extra_high != 0 and item is None:
            item = self.value(rest, f"{name}-item", f"{path}/items")
        body = ' "," space '.join(parts)
        if extra_high != 0 and item is not None:
            if parts:
                body += " " + repeat(f'"," space {item}', extra_low, extra_high)
            else:
                body = repeat(item, extra_low, extra_high, separator='"," space')
        return self.rules.add(name, _seq('"[" space', body, '"]" space'))

    def _object(self, schema: dict[str, Any], name: str, path: str) -> str:
        properties = dict(schema.get("properties", {}))
        required = list(schema.get("required", []))
        extra = schema.get("additionalProperties")
        if not properties and not required and extra in (None, True):
            return "json-object"
        for missing in (r for r in required if r not in properties):
            if extra is False:
                why = f"{missing!r} is required, but not a property, and no other is allowed"
                raise Unenforceable("required", path, why)
            properties[missing] = extra if isinstance(extra, dict) else {}
        pairs = {}
        for key, sub in properties.items():
            value = self.value(sub, f"{name}-{key}", f"{path}/properties/{key}")
            pairs[key] = self.rules.add(
                f"{name}-{key}-kv", f'{literal(json.dumps(key))} space ":" space {value}'
            )
        first = [pairs[k] for k in properties if k in required]
        optional = [pairs[k] for k in properties if k not in required]
        if isinstance(extra, dict) and extra:
            key = self._other_key(list(properties), name)
            value = self.value(extra, f"{name}-additional", f"{path}/additionalProperties")
            pair = self.rules.add(f"{name}-additional-kv", f'{key} ":" space {value}')
            optional.append(self.rules.add(f"{name}-additional", f'{pair} ("," space {pair})*'))
        body = ' "," space '.join(first)
        if first:
            body += "".join(f' ("," space {p})?' for p in optional)
        elif optional:  # the first optional pair written has no comma before it
            tail, starts = "", []
            for i in reversed(range(len(optional))):
                starts.append(_seq(optional[i], tail))
                tail = self.rules.add(f"{name}-rest", _seq(f'("," space {optional[i]})?', tail))
            body = "(" + " | ".join(reversed(starts)) + ")?"
        return self.rules.add(name, _seq('"{" space', body, '"}" space'))

    def _other_key(self, names: list[str], name: str) -> str:
        """A property name (a JSON string without escapes) that is none of `names`."""
        trie: dict[str, Any] = {}
        for key in names:
            node = trie
            for ch in key:
                node = node.setdefault(ch, {})
            node[END] = {}

        def walk(node: dict[str, Any]) -> str:
            children = [c for c in node if c != END]
            banned = "".join(
                f"\\x{ord(c):02X}" if ord(c) < 0x100 else f"\\u{ord(c):04X}"
                for c in children
                if ord(c) < 0x10000
            )
            alternatives = [] if END in node else ['"\\""']
            alternatives.append(f'[^"\\\\\\x7F\\x00-\\x1F{banned}] {KEY_CHAR}* "\\""')
            alternatives += [f"{literal(c)} ({walk(node[c])})" for c in children]
            return " | ".join(alternatives)

        return self.rules.add(f"{name}-other-key", f'"\\"" ({walk(trie)}) space')


def _seq(*parts: str) -> str:
    """GBNF items in sequence, the empty ones left out."""
    return " ".join(p for p in parts if p)


def _number(rules: Rules, kind: str, schema: dict[str, Any], name: str, path: str) -> str:
    """An integer or number within the schema's bounds."""
    bounds: list[Decimal | None] = []
    for keyword in BOUNDS:
        bound = schema.get(keyword)
        if bound is not None and (isinstance(bound, bool) or not isinstance(bound, int | float)):
            raise Unenforceable(keyword, path, f"{bound!r} is not a number")
        bounds.append(None if bound is None else Decimal(str(bound)))
    if all(b is None for b in bounds):
        return f"json-{kind}"
    try:
        whole = kind == "integer"
        body = integers(*integer_bounds(*bounds)) if whole else decimals(*bounds)
    except EmptyRange as exc:
        keyword = next(k for k, b in zip(BOUNDS, bounds, strict=True) if b is not None)
        raise Unenforceable(keyword, path, str(exc)) from None
    return rules.add(name, f"{body} space")


def _string(rules: Rules, reader: Reader, schema: dict[str, Any], name: str, path: str) -> str:
    """A string of the schema's format, pattern or lengths."""
    fmt, pattern = schema.get("format"), schema.get("pattern")
    low, high = schema.get("minLength", 0), schema.get("maxLength")
    if fmt is not None and fmt not in FORMATS:
        reader.refuse("format", path, f"{fmt!r} is not enforced ({', '.join(FORMATS)} are)")
        fmt = None
    if fmt is not None and pattern is not None:
        reader.refuse("pattern", path, "a pattern beside a format is not enforced")
        pattern = None
    if (fmt is not None or pattern is not None) and (low or high is not None):
        width = FORMAT_LENGTHS[fmt] if fmt is not None else anchored_width(pattern)
        fits = (
            width is not None
            and low <= width[0]
            and (high is None or (width[1] is not None and width[1] <= high))
        )
        if not fits:
            beside = "a format" if fmt is not None else "a pattern (anchored: ^...$)"
            keyword = "maxLength" if high is not None else "minLength"
            reader.refuse(keyword, path, f"a length beside {beside} that does not imply it")
        low, high = 0, None
    if fmt is not None:
        return rules.add(name, f'"\\"" {rules.format(fmt)} "\\"" space')
    if pattern is not None:
        try:
            return Pattern(rules, name).string(pattern)
        except ValueError as exc:
            reader.refuse("pattern", path, str(exc))
    if low or high is not None:
        return rules.add(name, f'"\\"" {repeat("json-char", low, high)} "\\"" space')
    return "json-string"


class GrammarBuilder:
    """One grammar from several schemas and hand-written rules; each schema gets its rules.
    Errors name the fields as `names` says the request's protocol calls them."""

    def __init__(self, names: FieldNames = CHAT_NAMES, tools: tuple[Tool, ...] = ()) -> None:
        self._rules = Rules()
        self.names = names
        self._tools = tools  # the request's tools, whose index an error names

    def arguments(self, tool: Tool, schema: dict[str, Any]) -> str:
        """The rule for the arguments of a call to `tool` (one of the request's tools), whose
        parameters schema is `schema`: strict as the tool says."""
        index = self._tools.index(tool) if tool in self._tools else 0
        param = self.names.tool_parameters.format(index)
        return self.schema(schema, f"tool{index}", param, strict=tool.strict)

    def schema(self, schema: Any, name: str, param: str, strict: bool = True) -> str:
        """Add the rules for values of `schema`; the name of the rule that matches one.
        Strict: a keyword the grammar cannot enforce is an InputError on `param` naming it;
        lenient: such keywords are dropped."""
        if not isinstance(schema, dict):
            raise InputError(f"{param} must be a JSON schema object", param)
        try:
            return _Converter(self._rules, Reader(schema, strict), name).value(schema, name, "#")
        except Unenforceable as exc:
            raise InputError(f"{param} cannot be enforced as a grammar: {exc}", param) from None
        except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
            raise InputError(
                f"{param} is not a JSON schema the grammar can read: {exc}", param
            ) from None

    def rule(self, name: str, body: str) -> str:
        return self._rules.add(name, body)

    def text(self, root: str) -> str:
        return self._rules.text(root)


def compile_grammar(text: str, param: str) -> llama_cpp.LlamaGrammar:
    try:
        return llama_cpp.LlamaGrammar.from_string(text, verbose=False)
    except Exception as exc:  # llama.cpp's parser reports only that it failed
        raise InputError(f"{param} cannot be enforced as a grammar: {exc}", param) from None


def schema_grammar(schema: dict[str, Any], param: str) -> llama_cpp.LlamaGrammar:
    """The grammar of JSON text that is valid against `schema`; {} means any JSON object."""
    builder = GrammarBuilder()
    rule = builder.schema(schema, "value", param) if schema else "json-object"
    return compile_grammar(builder.text(rule), param)
