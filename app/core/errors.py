"""Domain errors: what a client caused or can act on, each with the HTTP status it maps to.

No web framework here; app/http/errors.py turns any error into the OIP or the OpenAI shape.
"""

from __future__ import annotations

from dataclasses import dataclass


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


class TooLarge(LocaloipError):
    """A request over a size limit (an upload's bytes)."""

    status = 413


class Unauthorized(LocaloipError):
    status = 401
    default_code = "invalid_api_key"


class ModelNotFound(LocaloipError):
    status = 404
    default_code = "model_not_found"


class NotFound(LocaloipError):
    status = 404
    default_code = "not_found"


class Conflict(LocaloipError):
    """The thing exists, but is not in a state that allows this yet (or any more)."""

    status = 409
    default_code = "conflict"


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


class TooManyJobs(LocaloipError):
    """The playground runs as many replies and images at once as it allows."""

    status = 429
    type = "rate_limit_error"
    default_code = "too_many_jobs"


class ModelCrashed(LocaloipError):
    """The model's runner process died while this request waited or ran."""

    status = 503
    type = "server_error"
    default_code = "model_crashed"


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
