"""Which body media types each route takes: no route takes what a cross-site page can send.

A browser sends text/plain, form and multipart bodies cross-site without a CORS preflight, so
a JSON route that read them would run for any web page. A body with no Content-Type at all
is still read as the route's own type: tritonclient sends none, and a browser cannot send a
body without one cross-site.
"""

from __future__ import annotations

from localoip.app.http.edge.refusals import UnsupportedMediaType
from localoip.app.http.errors import is_openai_path

JSON = "application/json"
BINARY = "application/octet-stream"  # the OIP binary tensor extension
FORM = "application/x-www-form-urlencoded"
PLAYGROUND = ("/ui/", "/signin", "/signout")
"""The playground's own routes: its htmx posts forms, under page_only's HX-Request check."""


def media_type(content_type: str) -> str:
    """`application/json; charset=utf-8` -> `application/json`."""
    return content_type.partition(";")[0].strip().lower()


def accepted(path: str) -> tuple[str, ...]:
    """The media types a route's request body may have."""
    if path.startswith(PLAYGROUND):
        return (FORM,)
    parts = path.strip("/").split("/")
    oip_infer = parts[:2] == ["v2", "models"] and parts[-1] in ("infer", "infer_stream")
    if oip_infer and not is_openai_path(path):
        return (JSON, BINARY)
    return (JSON,)


def check_media_type(path: str, content_type: str | None) -> None:
    """Raise 415 unless a body of this Content-Type may go to `path`."""
    if not content_type or not content_type.strip():
        return
    given = media_type(content_type)
    wanted = accepted(path)
    if given in wanted:
        return
    hint = " (with curl: -H 'content-type: application/json')" if wanted == (JSON,) else ""
    raise UnsupportedMediaType(
        f"this route takes a body of Content-Type {' or '.join(wanted)}, not {given!r}{hint}"
    )
