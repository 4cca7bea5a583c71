"""Domain errors, and the handlers that turn them into the OIP error shape."""

from __future__ import annotations

import logging

from litestar import Request, Response
from litestar.exceptions import HTTPException

log = logging.getLogger("localoip")


class LocaloipError(Exception):
    """An error a client caused or can act on; `status` is its HTTP status."""

    status = 400


class InvalidInput(LocaloipError):
    status = 400


class ModelNotFound(LocaloipError):
    status = 404


class ModelNotReady(LocaloipError):
    status = 503


class CapabilityMissing(LocaloipError):
    status = 400


def oip_error(_: Request, exc: Exception) -> Response:
    """OIP shape: {"error": "<message>"} with the error's status."""
    if isinstance(exc, LocaloipError):
        return Response({"error": str(exc)}, status_code=exc.status)
    if isinstance(exc, HTTPException):
        message = exc.detail
        extra = getattr(exc, "extra", None)
        if extra:
            message = f"{message}: {extra}"
        return Response({"error": message}, status_code=exc.status_code)
    log.exception("internal error")
    return Response({"error": f"internal error: {type(exc).__name__}: {exc}"}, status_code=500)


OIP_HANDLERS = {Exception: oip_error}
