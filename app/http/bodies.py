"""JSON request bodies read into msgspec Structs, with errors that name the field: the one
reader every JSON API (OpenAI's, Ollama's) uses."""

from __future__ import annotations

import re
from typing import TypeVar

import msgspec
from localoip.app.core.errors import InvalidInput

S = TypeVar("S")
WHERE = re.compile(r" - at `(?:key` in `)?\$\.?([^`]*)`$")  # a bad key names its dict
MISSING = re.compile(r"Object missing required field `([^`]+)`")


def decode(body: bytes, into: type[S]) -> S:
    """Parse a JSON body; InvalidInput (400) for an empty or malformed one, and for a field of
    the wrong type, naming it as `param` (`messages[0].role`)."""
    if not body.strip():
        raise InvalidInput("the request body is empty; expected a JSON object", None)
    try:
        return msgspec.json.decode(body, type=into)
    except msgspec.ValidationError as exc:
        message = str(exc)
        where = WHERE.search(message)
        missing = MISSING.search(message)
        param = where[1] if where else None
        if missing:
            param = f"{param}.{missing[1]}" if param else missing[1]
        raise InvalidInput(message, param) from None
    except msgspec.DecodeError as exc:
        raise InvalidInput(f"the request body is not valid JSON: {exc}") from None
