"""Domain errors, and the handlers that turn any error into the OIP or the OpenAI shape."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from litestar import Request, Response
from litestar.exceptions import HTTPException
from localoip.runtimes.base import InputError, UpstreamError

log = logging.getLogger("localoip")


class LocaloipError(Exception):
    """An error a client caused or can act on; `status` is its HTTP status."""

    status = 400
    type = "invalid_request_error"
    default_code: str | None = None

    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.param = param
        self.code = code or self.default_code


class InvalidInput(LocaloipError):
    status = 400


class Unauthorized(LocaloipError):
    status = 401
    default_code = "invalid_api_key"


class ModelNotFound(LocaloipError):
    status = 404
    default_code = "model_not_found"


class NotFound(LocaloipError):
    status = 404
    default_code = "not_found"


class ModelNotReady(LocaloipError):
    status = 503
    type = "server_error"
    default_code = "model_not_ready"


class CapabilityMissing(LocaloipError):
    status = 400
    default_code = "unsupported_capability"


class QueueFull(LocaloipError):
    """The model's queue is full; `retry_after` is a guess, in seconds, at when it has room."""

    status = 429
    type = "rate_limit_error"
    default_code = "queue_full"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.headers = {"Retry-After": str(retry_after)}


class ClientGone(LocaloipError):
    """The client hung up while its request waited; nobody reads the answer."""

    status = 499
    default_code = "client_closed_request"


@dataclass(frozen=True, slots=True)
class Problem:
    """Any error, reduced to what both protocols' error shapes need."""

    status: int
    message: str
    type: str = "invalid_request_error"
    param: str | None = None
    code: str | None = None
    headers: dict[str, str] | None = None


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
