"""Any error, in the OIP or the OpenAI shape: the one place domain errors become HTTP."""

from __future__ import annotations

import logging

from litestar import Request, Response
from litestar.exceptions import HTTPException
from localoip.app.core.errors import LocaloipError, Problem
from localoip.runtimes.capabilities import InputError, UpstreamError

log = logging.getLogger("localoip")


def classify(exc: Exception) -> Problem:
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
    log.exception("internal error")
    return Problem(500, f"internal error: {type(exc).__name__}: {exc}", "server_error")


def oip_error(_: Request, exc: Exception) -> Response:
    """OIP shape: {"error": "<message>"}."""
    problem = classify(exc)
    return Response({"error": problem.message}, status_code=problem.status, headers=problem.headers)


def openai_body(problem: Problem) -> dict:
    return {
        "error": {
            "message": problem.message,
            "type": problem.type,
            "param": problem.param,
            "code": problem.code,
        }
    }


def openai_error(_: Request, exc: Exception) -> Response:
    """OpenAI shape: {"error": {"message", "type", "param", "code"}}."""
    problem = classify(exc)
    return Response(openai_body(problem), status_code=problem.status, headers=problem.headers)


def is_openai_path(path: str) -> bool:
    """Routes in the OpenAI shape: /v1/..., /openai/v1/..., /v2/models/{m}/infer/... and vLLM's
    /rerank, /tokenize and /detokenize."""
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
