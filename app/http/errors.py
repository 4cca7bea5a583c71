"""Any error, in the OIP, OpenAI, Anthropic or Ollama shape: the one place errors become HTTP
statuses and bodies, and the one rule for which protocol a request speaks."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Literal

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException
from localoip.app.core.errors import LocaloipError, Problem
from localoip.runtimes.capabilities import InputError, UpstreamError
from localoip.runtimes.sources.errors import SourceError
from localoip.runtimes.wire.anthropic.messages import ErrorDetail
from localoip.runtimes.wire.anthropic.messages import ErrorResponse as AnthropicError
from localoip.runtimes.wire.ollama.responses import ErrorResponse as OllamaError

log = logging.getLogger("localoip")


def _known(exc: BaseException) -> Problem | None:
    """The status and error fields of an error a rule knows; None for any other.

    Domain errors carry their status (app/core/errors.py), a runtime's InputError is a 400, as
    is a source that cannot be fetched or found (SourceError, from a pull or a delete),
    an upstream's error keeps the upstream's status, and Litestar's own (404, 405, 413, its
    validation 400s) keep theirs.
    """
    if isinstance(exc, LocaloipError):
        headers = getattr(exc, "headers", None)
        return Problem(exc.status, str(exc), exc.type, exc.param, exc.code, headers)
    if isinstance(exc, InputError):
        return Problem(400, str(exc), param=exc.param, code=exc.code)
    if isinstance(exc, SourceError):  # a source asked for by name (a pull, a delete)
        return Problem(400, str(exc), param="model", code="source_error")
    if isinstance(exc, UpstreamError):
        return Problem(exc.status, str(exc), exc.type, exc.param, exc.code)
    if isinstance(exc, HTTPException):
        message = exc.detail
        extra = getattr(exc, "extra", None)
        if extra:
            message = f"{message}: {extra}"
        kind = "invalid_request_error" if exc.status_code < 500 else "server_error"
        return Problem(exc.status_code, message, kind)
    return None


def _unexpected(exc: BaseException) -> Problem:
    return Problem(500, f"internal error: {type(exc).__name__}: {exc}", "server_error")


def problem_of(exc: BaseException) -> Problem:
    """The status and error fields any exception answers with: 500 for one no rule knows."""
    return _known(exc) or _unexpected(exc)


def status_of(exc: BaseException) -> int:
    """The HTTP status any exception answers with (problem_of's)."""
    return problem_of(exc).status


def classify(exc: BaseException) -> Problem:
    """problem_of(exc), logging the traceback of an error no rule knows."""
    problem = _known(exc)
    if problem is None:
        log.error("internal error", exc_info=exc)
        problem = _unexpected(exc)
    return problem


def oip_body(problem: Problem) -> dict:
    """OIP shape: {"error": "<message>"}."""
    return {"error": problem.message}


def openai_body(problem: Problem) -> dict:
    """OpenAI shape: {"error": {"message", "type", "param", "code"}}."""
    return {
        "error": {
            "message": problem.message,
            "type": problem.type,
            "param": problem.param,
            "code": problem.code,
        }
    }


ANTHROPIC_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",  # a model loading, crashed or over its memory: Anthropic's 529
    504: "timeout_error",
}
"""Anthropic's error type for each status (docs.claude.com/en/api/errors); any other 4xx is an
`invalid_request_error`, any other 5xx an `api_error`."""


TOO_LONG = "prompt is too long"


def anthropic_body(problem: Problem) -> AnthropicError:
    """Anthropic shape: {"type": "error", "error": {"type", "message"}}; the message names the
    field (`param`) when it does not already, as the shape has no field of its own for it,
    and a prompt longer than the context is "prompt is too long", as Anthropic says it."""
    kind = ANTHROPIC_TYPES.get(problem.status)
    if kind is None:
        kind = "invalid_request_error" if problem.status < 500 else "api_error"
    message = problem.message
    if problem.code == "context_length_exceeded" and not message.startswith(TOO_LONG):
        message = f"{TOO_LONG}: {message}"  # Anthropic's words for a prompt over the context
    elif problem.param and problem.param not in message:
        message = f"{problem.param}: {message}"
    return AnthropicError(error=ErrorDetail(type=kind, message=message))


OLLAMA_STATUSES = {429: 503}
"""Where Ollama answers a status of its own: a full queue is its 503 ("server busy")."""


def ollama_body(problem: Problem) -> dict:
    """Ollama shape: {"error": "<message>"} (its Go StatusError's body)."""
    return msgspec.to_builtins(OllamaError(error=problem.message))


def ollama_status(problem: Problem) -> int:
    """The status Ollama answers `problem` with: its own where OLLAMA_STATUSES says."""
    return OLLAMA_STATUSES.get(problem.status, problem.status)


def oip_error(_: Request, exc: Exception) -> Response:
    """An exception handler answering in the OIP shape."""
    problem = classify(exc)
    return Response(oip_body(problem), status_code=problem.status, headers=problem.headers)


def openai_error(_: Request, exc: Exception) -> Response:
    """An exception handler answering in the OpenAI shape."""
    problem = classify(exc)
    return Response(openai_body(problem), status_code=problem.status, headers=problem.headers)


def anthropic_error(_: Request, exc: Exception) -> Response:
    """An exception handler answering in the Anthropic shape."""
    problem = classify(exc)
    body = anthropic_body(problem)
    return Response(body, status_code=problem.status, headers=problem.headers)


def ollama_error(_: Request, exc: Exception) -> Response:
    """An exception handler answering in the Ollama shape, with Ollama's status."""
    problem = classify(exc)
    return Response(
        ollama_body(problem), status_code=ollama_status(problem), headers=problem.headers
    )


Protocol = Literal["oip", "openai", "anthropic", "ollama"]


def protocol_of(path: str, headers: Mapping[str, str]) -> Protocol:
    """The protocol a request speaks. Anthropic's: /v1/messages/..., /anthropic/..., and any
    /v1 path asked with an `anthropic-version` header, which Anthropic's SDKs send on every
    call (so GET /v1/models answers them in Anthropic's shape). OpenAI's: the other /v1/...,
    /openai/v1/..., /v2/models/{m}/infer/... and vLLM's /rerank, /tokenize and /detokenize.
    Ollama's: /api/... (its liveness probe, HEAD /, has no body). OIP's: the rest.

    Routes declare their shape with their exception handlers; this rule is for the paths
    two protocols share and for what no route answers (an unknown path, a wrong method)."""
    parts = path.strip("/").split("/")
    if parts[0] == "anthropic" or parts[:2] == ["v1", "messages"]:
        return "anthropic"
    if parts[0] == "v1" and "anthropic-version" in headers:
        return "anthropic"
    if (
        parts[0] in ("v1", "rerank", "tokenize", "detokenize")
        or parts[:2] == ["openai", "v1"]
        or (
            len(parts) > 4
            and parts[:2] == ["v2", "models"]
            and parts[3] in ("infer", "infer_stream")
        )
    ):
        return "openai"
    return "ollama" if parts[0] == "api" else "oip"


HANDLERS: dict[Protocol, Callable[[Request, Exception], Response]] = {
    "oip": oip_error,
    "openai": openai_error,
    "anthropic": anthropic_error,
    "ollama": ollama_error,
}
"""Each protocol's exception handler: the one table from a request's protocol to its shape."""


def any_error(request: Request, exc: Exception) -> Response:
    """The shape the request's protocol uses (protocol_of): the app-level fallback (unrouted
    paths, wrong methods), and the handler of routes that two protocols share."""
    return HANDLERS[protocol_of(request.url.path, request.headers)](request, exc)


OIP_HANDLERS = {Exception: oip_error}
OPENAI_HANDLERS = {Exception: openai_error}
ANTHROPIC_HANDLERS = {Exception: anthropic_error}
OLLAMA_HANDLERS = {Exception: ollama_error}
APP_HANDLERS = {Exception: any_error}
