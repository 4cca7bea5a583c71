"""JSON Schema read for a grammar: the keywords a grammar enforces and those it refuses, $ref
targets, allOf (and a $ref's siblings) merged into one schema, whether oneOf's branches
exclude each other, and whether a constant meets the keywords beside it.

A strict reader refuses what it cannot enforce (Unenforceable, naming the keyword and where it
is); a lenient one (a tool without `strict`) drops it and enforces the rest.
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any
from urllib.parse import unquote

# Keywords that constrain nothing (unknown keywords constrain nothing either).
ANNOTATIONS = frozenset(
    {
        "title", "description", "default", "examples", "example", "$comment", "$schema",
        "$id", "$anchor", "deprecated", "readOnly", "writeOnly", "discriminator",
        "contentEncoding", "contentMediaType", "nullable", "strict", "$defs", "definitions",
    }
)  # fmt: skip
# Assertions a grammar does not enforce, and why.
REFUSED = {
    "not": "a grammar cannot exclude what a schema describes",
    "if": "conditional schemas are not enforced",
    "then": "conditional schemas are not enforced",
    "else": "conditional schemas are not enforced",
    "dependentRequired": "dependencies between properties are not enforced",
    "dependentSchemas": "dependencies between properties are not enforced",
    "dependencies": "dependencies between properties are not enforced",
    "patternProperties": "property names by pattern are not enforced",
    "propertyNames": "property names by schema are not enforced",
    "minProperties": "property counts are not enforced",
    "maxProperties": "property counts are not enforced",
    "unevaluatedProperties": "unevaluated properties are not enforced",
    "unevaluatedItems": "unevaluated items are not enforced",
    "contains": "array contents by `contains` are not enforced",
    "minContains": "array contents by `contains` are not enforced",
    "maxContains": "array contents by `contains` are not enforced",
    "uniqueItems": "unique items are not enforced",
    "multipleOf": "multiples are not enforced",
    "$dynamicRef": "dynamic references are not enforced",
    "$recursiveRef": "recursive references of draft 2019-09 are not enforced; use $ref",
}
# The keywords that apply to values of one type (JSON Schema ignores them for other types).
FAMILIES = {
    "object": {"properties", "required", "additionalProperties"},
    "array": {"items", "prefixItems", "additionalItems", "minItems", "maxItems"},
    "string": {"minLength", "maxLength", "pattern", "format"},
    "number": {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"},
}
TYPES = ("object", "array", "string", "number", "integer", "boolean", "null")
LOWER = {"minimum", "exclusiveMinimum", "minLength", "minItems"}
UPPER = {"maximum", "exclusiveMaximum", "maxLength", "maxItems"}


class Unenforceable(ValueError):
    """A schema keyword the grammar cannot enforce (or a schema no value meets)."""

    def __init__(self, keyword: str, path: str, why: str) -> None:
        super().__init__(f"JSON Schema keyword {keyword!r} at {path}: {why}")
        self.keyword = keyword


def json_type(value: Any) -> str:
    """A JSON value's type; a whole number is "integer"."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return "integer"
    if isinstance(value, float):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), "unknown")


def same_value(a: Any, b: Any) -> bool:
    """JSON equality: 1 equals 1.0, true does not equal 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True) or (
        json_type(a) in ("integer", "number") and json_type(b) in ("integer", "number") and a == b
    )


def types_of(schema: dict[str, Any]) -> set[str] | None:
    """The types a schema's values may have: its `type`, else the types its keywords are
    for; None when any type will do."""
    declared = schema.get("type")
    if isinstance(declared, str):
        return {declared}
    if isinstance(declared, list) and all(isinstance(t, str) for t in declared):
        return set(declared)
    if declared is not None:  # a number, an object, a list of them: no JSON type's name
        return {repr(declared)}
    implied = {family for family, keys in FAMILIES.items() if keys & schema.keys()}
    return implied or None


def overlap(a: set[str] | None, b: set[str] | None) -> set[str] | None:
    """The types both allow (an integer is a number)."""
    if a is None or b is None:
        return b if a is None else a
    out = a & b
    if ("integer" in a and "number" in b) or ("integer" in b and "number" in a):
        out.add("integer")
    return out


class Reader:
    """One schema's $ref targets and the rules for merging and checking its parts."""

    def __init__(self, root: Any, strict: bool) -> None:
        self.root = root
        self.strict = strict

    def refuse(self, keyword: str, path: str, why: str) -> None:
        """Raise Unenforceable when strict; a lenient reader drops the keyword."""
        if self.strict:
            raise Unenforceable(keyword, path, why)

    def target(self, ref: Any, path: str) -> tuple[str, Any]:
        """The key (its JSON pointer) and schema a local `$ref` names (a lenient reader reads
        any other as a schema that admits any value)."""
        if not isinstance(ref, str) or not ref.startswith("#") or ref[1:2] not in ("", "/"):
            self.refuse("$ref", path, f"{ref!r} is not a local JSON pointer (#/...)")
            return repr(ref), {}
        node = self.root
        for part in ref[2:].split("/") if ref != "#" else []:
            part = unquote(part).replace("~1", "/").replace("~0", "~")
            if isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            elif isinstance(node, dict) and part in node:
                node = node[part]
            else:
                self.refuse("$ref", path, f"{ref!r} names nothing in the schema")
                return ref, {}
        return ref, node

    def flatten(self, schema: Any, path: str, unfolding: tuple[str, ...] = ()) -> dict[str, Any]:
        """The schema with its top-level `$ref` and `allOf` merged into it."""
        if schema is True:
            return {}
        if not isinstance(schema, dict):
            raise Unenforceable("false" if schema is False else "schema", path, "admits no value")
        parts = [{k: v for k, v in schema.items() if k not in ("$ref", "allOf")}]
        if "$ref" in schema:
            key, target = self.target(schema["$ref"], path)
            if key in unfolding:
                raise Unenforceable("$ref", path, f"{key!r} refers to itself with nothing between")
            parts.append(self.flatten(target, key, (*unfolding, key)))
        for i, branch in enumerate(schema.get("allOf", [])):
            parts.append(self.flatten(branch, f"{path}/allOf/{i}", unfolding))
        out = parts[0]
        for part in parts[1:]:
            out = self.merge(out, part, path)
        return out

    def merge(self, a: dict[str, Any], b: dict[str, Any], path: str) -> dict[str, Any]:
        """One schema that both schemas' values meet (flattened schemas: no $ref, no allOf)."""
        out: dict[str, Any] = {}
        for key in [*a, *(k for k in b if k not in a)]:
            if key in ANNOTATIONS:
                continue
            if key not in a or key not in b or same_value(a[key], b[key]):
                out[key] = a[key] if key in a else b[key]
                continue
            out[key] = self._merged(key, a[key], b[key], path)
        if "type" in out and not out["type"]:
            raise Unenforceable("type", path, "allOf asks for types no value has")
        for first, second in ((a, b), (b, a)):
            self._closed(first, second, out, path)
        return out

    def _merged(self, key: str, x: Any, y: Any, path: str) -> Any:
        if key == "type":
            both = overlap(types_of({"type": x}), types_of({"type": y})) or set()
            return sorted(both)
        if key == "properties":
            names = [*x, *(n for n in y if n not in x)]
            return {
                n: {"allOf": [x[n], y[n]]} if n in x and n in y else x.get(n, y.get(n))
                for n in names
            }
        if key == "required":
            return [*x, *(n for n in y if n not in x)]
        if key in LOWER:
            return max(x, y)
        if key in UPPER:
            return min(x, y)
        if key == "enum":
            return [v for v in x if any(same_value(v, w) for w in y)]
        if key in ("items", "additionalProperties"):
            if x is False or y is False:
                return False
            return y if x is True else x if y is True else {"allOf": [x, y]}
        if key in ("anyOf", "oneOf"):
            if len(x) * len(y) > 64:
                self.refuse(key, path, "allOf of two long unions is too large to enforce")
            return [{"allOf": [p, q]} for p, q in itertools.product(x, y)]
        if key == "const":
            raise Unenforceable("const", path, "allOf asks for two different constants")
        self.refuse(key, path, f"allOf gives two different {key!r} values, which cannot be merged")
        return x

    def _closed(self, own: dict, other: dict, out: dict, path: str) -> None:
        """Properties `other` declares that `own` closes out (additionalProperties false) or
        holds to its additionalProperties schema."""
        extra = own.get("additionalProperties")
        if extra is None or extra is True:
            return
        declared = own.get("properties", {})
        properties = dict(out.get("properties", {}))
        for name, schema in other.get("properties", {}).items():
            if name in declared:
                continue
            if extra is False:
                if name in out.get("required", []):
                    why = f"allOf requires {name!r} where another part allows no other properties"
                    raise Unenforceable("additionalProperties", path, why)
                properties.pop(name, None)
            else:
                properties[name] = {"allOf": [schema, extra]}
        if properties or "properties" in out:
            out["properties"] = properties

    def disjoint(self, a: dict[str, Any], b: dict[str, Any], path: str) -> bool:
        """Whether no value meets both (flattened) schemas, as far as can be told cheaply:
        no shared type, no shared constant, or a required property with disjoint values."""
        types = overlap(types_of(a) or _value_types(a), types_of(b) or _value_types(b))
        if types == set():
            return True
        values_a, values_b = _values(a), _values(b)
        if values_a is not None and values_b is not None:
            return not any(same_value(x, y) for x in values_a for y in values_b)
        if values_a is not None or values_b is not None:
            values, other = (values_a, b) if values_a is not None else (values_b, a)
            return not any(admits(other, v) for v in values or [])
        for name in set(a.get("required", [])) & set(b.get("required", [])):
            pa, pb = a.get("properties", {}).get(name), b.get("properties", {}).get(name)
            if pa is not None and pb is not None:
                inner = f"{path}/properties/{name}"
                if self.disjoint(self.flatten(pa, inner), self.flatten(pb, inner), inner):
                    return True
        for x, y in ((a, b), (b, a)):
            closed = y.get("additionalProperties") is False
            if closed and any(n not in y.get("properties", {}) for n in x.get("required", [])):
                return True
        return False


def _values(schema: dict[str, Any]) -> list[Any] | None:
    """The values a schema names (const, enum); None when it names none."""
    if "const" in schema:
        return [schema["const"]]
    return list(schema["enum"]) if "enum" in schema else None


def _value_types(schema: dict[str, Any]) -> set[str] | None:
    values = _values(schema)
    return None if values is None else {json_type(v) for v in values}


def admits(schema: dict[str, Any], value: Any) -> bool:
    """Whether a value meets a flattened schema's type, bounds, lengths, pattern and item
    counts, and names its required properties (what a constant beside them is checked for)."""
    kind = json_type(value)
    types = types_of(schema) if "type" in schema else None
    if types is not None and kind not in types and not (kind == "integer" and "number" in types):
        return False
    if kind in ("integer", "number"):
        checks = [
            ("minimum", lambda b: value >= b),
            ("maximum", lambda b: value <= b),
            ("exclusiveMinimum", lambda b: value > b),
            ("exclusiveMaximum", lambda b: value < b),
        ]
        return all(check(schema[k]) for k, check in checks if k in schema)
    if kind == "string":
        pattern = schema.get("pattern")
        return (
            len(value) >= schema.get("minLength", 0)
            and len(value) <= schema.get("maxLength", len(value))
            and (pattern is None or re.search(pattern, value) is not None)
        )
    if kind == "array":
        return schema.get("minItems", 0) <= len(value) <= schema.get("maxItems", len(value))
    if kind == "object":
        return all(name in value for name in schema.get("required", []))
    return True
