"""Validate a body against a schema of OpenAI's published spec (../shared/specs), strictly."""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

import jsonschema
import yaml

from support.paths import SHARED

SPEC = SHARED / "specs" / "openai-openapi.yaml"


@cache
def _components() -> dict[str, Any]:
    # libyaml reads the 3 MB spec in about a quarter of the pure-Python loader's time
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    components = yaml.load(SPEC.read_text(), Loader=loader)["components"]
    # Spec-side, as in test_openai_schemathesis.py's hook: a stored completion's listed messages
    # keep their own roles, as the spec's own example shows, though their schema says assistant.
    schemas = components["schemas"]
    listed = schemas["ChatCompletionMessageList"]["properties"]["data"]["items"]["allOf"]
    listed[0] = copy.deepcopy(schemas["ChatCompletionResponseMessage"])
    listed[0]["properties"]["role"] = {"type": "string"}
    return components


def conform(schema: str, body: Any) -> None:
    """Raise unless `body` is valid as `#/components/schemas/<schema>` (JSON Schema 2020-12,
    as OpenAPI 3.1 uses)."""
    root = {"$ref": f"#/components/schemas/{schema}", "components": _components()}
    jsonschema.Draft202012Validator(root).validate(body)
