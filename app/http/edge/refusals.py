"""The errors the edge answers with; each route's handlers give them its protocol's shape."""

from __future__ import annotations

from localoip.app.core.errors import LocaloipError


class Forbidden(LocaloipError):
    """A Host or Origin this server does not answer: what a DNS-rebinding or cross-site page
    sends."""

    status = 403
    type = "permission_error"
    default_code = "forbidden"


class UnsupportedMediaType(LocaloipError):
    """A body in a media type or content coding the route does not take."""

    status = 415
    default_code = "unsupported_media_type"


class BodyTooLarge(LocaloipError):
    """A request body over max_body_bytes, counted after decompression."""

    status = 413
    default_code = "body_too_large"
