"""JSON bodies in and out, for every JSON protocol (OpenAI's, Anthropic's, Ollama's): a request
body read into its Struct with the offending field named, and what a JSON route is annotated to
answer."""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec
from localoip.app.core.errors import InvalidInput

S = TypeVar("S")
WHERE = re.compile(r" - at `(?:key` in `)?\$\.?([^`]*)`$")  # a bad key names its dict
MISSING = re.compile(r"Object missing required field `([^`]+)`")

JSONObject = dict[str, Any]
"""What a JSON route answers, as /schema/openapi.json shows it: an object. The handlers return
wire Structs (runtimes/wire/), which Litestar encodes with msgspec; annotated with them, the
schema would change, and issue 22 keeps it as it was. Routes that may stream answer `Any`."""


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
