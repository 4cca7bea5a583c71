"""Validate a body against a schema of OpenAI's published spec (../shared/specs), strictly."""

from __future__ import annotations

from functools import cache
from typing import Any

import jsonschema
import yaml
from conftest import SHARED

SPEC = SHARED / "specs" / "openai-openapi.yaml"


@cache
def _components() -> dict[str, Any]:
    return yaml.safe_load(SPEC.read_text())["components"]


def conform(schema: str, body: Any) -> None:
    """Raise unless `body` is valid as `#/components/schemas/<schema>` (JSON Schema 2020-12,
    as OpenAPI 3.1 uses)."""
    root = {"$ref": f"#/components/schemas/{schema}", "components": _components()}
    jsonschema.Draft202012Validator(root).validate(body)
