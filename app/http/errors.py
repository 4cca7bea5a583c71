"""Any error, in the OIP or the OpenAI shape: the one place errors become HTTP statuses, and
the one rule for which protocol a path speaks."""

from __future__ import annotations

import logging

from litestar import Request, Response
from litestar.exceptions import HTTPException
from localoip.app.core.errors import LocaloipError, Problem
from localoip.runtimes.capabilities import InputError, UpstreamError

log = logging.getLogger("localoip")


def _known(exc: BaseException) -> Problem | None:
    """The status and error fields of an error a rule knows; None for any other.

    Domain errors carry their status (app/core/errors.py), a runtime's InputError is a 400,
    an upstream's error keeps the upstream's status, and Litestar's own (404, 405, 413, its
    validation 400s) keep theirs.
    """
    if isinstance(exc, LocaloipError):
        headers = getattr(exc, "headers", None)
        return Problem(exc.status, str(exc), exc.type, exc.param, exc.code, headers)
    if isinstance(exc, InputError):
        return Problem(400, str(exc), param=exc.param, code=exc.code)
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


def oip_error(_: Request, exc: Exception) -> Response:
    """An exception handler answering in the OIP shape."""
    problem = classify(exc)
    return Response(oip_body(problem), status_code=problem.status, headers=problem.headers)


def openai_error(_: Request, exc: Exception) -> Response:
    """An exception handler answering in the OpenAI shape."""
    problem = classify(exc)
    return Response(openai_body(problem), status_code=problem.status, headers=problem.headers)


def is_openai_path(path: str) -> bool:
    """Whether `path` speaks OpenAI's protocol (else OIP's): /v1/..., /openai/v1/...,
    /v2/models/{m}/infer/... and vLLM's /rerank, /tokenize and /detokenize.

    Routes declare their shape with their exception handlers; this rule is for what no route
    answers (an unknown path, a wrong method)."""
    parts = path.strip("/").split("/")
    return (
        parts[0] in ("v1", "rerank", "tokenize", "detokenize")
        or parts[:2] == ["openai", "v1"]
        or (
            len(parts) > 4
            and parts[:2] == ["v2", "models"]
            and parts[3] in ("infer", "infer_stream")
        )
    )


def any_error(request: Request, exc: Exception) -> Response:
    """App-level fallback (unrouted paths, wrong methods): the shape the path's protocol uses."""
    return (openai_error if is_openai_path(request.url.path) else oip_error)(request, exc)


OIP_HANDLERS = {Exception: oip_error}
OPENAI_HANDLERS = {Exception: openai_error}
APP_HANDLERS = {Exception: any_error}
