"""Which body media types a route takes: each route declares its own in its `opt`
(`opt=body_types(JSON, BINARY)`, on a handler, a controller or a mounted layer); JSON when
it declares none. No route should take what a cross-site page can send unless it needs to.

A browser sends text/plain, form and multipart bodies cross-site without a CORS preflight, so
a JSON route that read them would run for any web page. A body with no Content-Type at all
is still read as the route's own type: tritonclient sends none, and a browser cannot send a
body without one cross-site.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from localoip.app.http.edge.refusals import UnsupportedMediaType

JSON = "application/json"
BINARY = "application/octet-stream"  # the OIP binary tensor extension
FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"  # forms that carry files (the playground's chat images)
BODY_TYPES = "body_types"
"""The key of a route's `opt` that names the media types its request body may have."""


def body_types(*types: str) -> dict[str, tuple[str, ...]]:
    """A route's `opt` saying its request body may have any of `types` (media types)."""
    return {BODY_TYPES: types}


def accepted(opt: Mapping[str, Any]) -> tuple[str, ...]:
    """The media types a route's body may have, from its resolved `opt`: JSON by default."""
    return tuple(opt.get(BODY_TYPES, (JSON,)))


def media_type(content_type: str) -> str:
    """`application/json; charset=utf-8` -> `application/json`."""
    return content_type.partition(";")[0].strip().lower()


def check_media_type(wanted: tuple[str, ...], content_type: str | None) -> None:
    """Raise 415 unless a body of this Content-Type is one of the `wanted` media types."""
    if not content_type or not content_type.strip():
        return
    given = media_type(content_type)
    if given in wanted:
        return
    hint = " (with curl: -H 'content-type: application/json')" if wanted == (JSON,) else ""
    raise UnsupportedMediaType(
        f"this route takes a body of Content-Type {' or '.join(wanted)}, not {given!r}{hint}"
    )
