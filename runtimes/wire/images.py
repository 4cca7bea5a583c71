"""Images inside requests: data URLs and bare base64, decoded; any other URL refused, since
fetching one would be a request from the server (file:// would read its own disk). Then the
one check of a chat's images (count, bytes, pixels, readable), which every surface shares."""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Sequence
from typing import Protocol

from localoip.runtimes.capabilities import ChatImage, InputError


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


def data_url(data: bytes) -> str:
    """An image's bytes as a `data:<type>;base64,` URL, its type read from the bytes."""
    return f"data:{image_type(data)};base64," + base64.b64encode(data).decode("ascii")


class ImageLimits(Protocol):
    """What a chat's images may be, as a vision model's options say (LlamaCppOptions)."""

    max_images: int  # images in one request
    max_image_bytes: int  # bytes of one encoded image
    max_image_pixels: int  # width times height of one image


def pictures(images: Sequence[ChatImage], limits: ImageLimits) -> list[tuple[int, int, bytes]]:
    """Each image decoded by Pillow to RGB: (width, height, pixels). The llama.cpp runtime
    hands these to mtmd, which then never parses a request's bytes itself (its stb_image
    decoder); the playground checks an attachment with the same call before keeping it.

    Raises InputError, naming the image's part, for too many images, too many bytes or
    pixels, and bytes that are not an image Pillow reads whole.
    """
    from PIL import Image, UnidentifiedImageError

    if len(images) > limits.max_images:
        raise InputError(
            f"{len(images)} images; this model takes at most {limits.max_images} a request",
            images[limits.max_images].param,
        )
    out = []
    for image in images:
        if len(image.data) > limits.max_image_bytes:
            raise InputError(
                f"the image is {len(image.data)} bytes; at most {limits.max_image_bytes}",
                image.param,
            )
        try:
            opened = Image.open(io.BytesIO(image.data))
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
            raise InputError(
                "not an image that can be read (PNG, JPEG, ...)", image.param
            ) from None
        with opened:
            width, height = opened.size
            if width * height > limits.max_image_pixels:
                raise InputError(
                    f"the image is {width}x{height} pixels; at most "
                    f"{limits.max_image_pixels} pixels",
                    image.param,
                )
            try:
                rgb = opened.convert("RGB")  # decodes it all: a truncated file fails here
            except (OSError, ValueError, Image.DecompressionBombError):
                raise InputError(
                    "not an image that can be read (PNG, JPEG, ...)", image.param
                ) from None
        out.append((width, height, rgb.tobytes()))
    return out
