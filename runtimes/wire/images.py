"""Images inside requests: data URLs and bare base64, decoded; any other URL refused, since
fetching one would be a request from the server (file:// would read its own disk)."""

from __future__ import annotations

import base64
import binascii

from localoip.runtimes.capabilities import InputError


def image_bytes(url: str, param: str) -> bytes:
    """The bytes of an image sent as `data:<type>;base64,<data>` or as bare base64.

    Raises InputError naming `param` for any other URL (http(s), file, ...) and for data
    that is not base64. The bytes are not yet known to be an image (the runtime checks that).
    """
    text = url.strip()
    if text.startswith("data:"):
        header, comma, payload = text.partition(",")
        if not comma or not header.endswith(";base64"):
            raise InputError("an image data URL must be data:<type>;base64,<data>", param)
    elif "://" in text[:16]:
        raise InputError(
            "fetching images from URLs is off: send the image as a data: URL or base64", param
        )
    else:
        payload = text
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise InputError("the image is not valid base64", param) from None
    if not data:
        raise InputError("the image is empty", param)
    return data


MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF8", "image/gif"),
    (b"BM", "image/bmp"),
)


def image_type(data: bytes) -> str:
    """The media type of an image's bytes, from their first bytes (a data: URL's type)."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    for magic, kind in MAGIC:
        if data.startswith(magic):
            return kind
    return "application/octet-stream"
