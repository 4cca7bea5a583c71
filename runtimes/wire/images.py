"""Images inside requests, for every protocol: base64 and data URLs decoded, other URLs kept for
the server to fetch (app/core/image_urls.py, off unless `[server] image_urls` is on), and the
one rule for a message's text and images (IMAGE_MARKER where each image stands). Then the
one check of a chat's images (count, bytes, pixels, readable), which every surface shares."""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Sequence
from typing import Protocol

from localoip.runtimes.capabilities import IMAGE_MARKER, ChatImage, InputError


def base64_image(payload: str, param: str) -> bytes:
    """The bytes of an image sent as base64 (Ollama's `images`, Anthropic's base64 source).

    Raises InputError naming `param` for data that is not base64, or is empty. The bytes are
    not yet known to be an image (the runtime checks that)."""
    try:
        data = base64.b64decode(payload.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise InputError("the image is not valid base64", param) from None
    if not data:
        raise InputError("the image is empty", param)
    return data


def url_image(url: str, param: str) -> ChatImage:
    """An image sent as `data:<type>;base64,<data>`, as bare base64, or as any other URL
    (http(s), file, ...), which is kept as `ChatImage.url` for the server to fetch or refuse.

    Raises InputError naming `param` for a data URL that is not base64, or bad base64."""
    text = url.strip()
    if text.startswith("data:"):
        header, comma, payload = text.partition(",")
        if not comma or not header.endswith(";base64"):
            raise InputError("an image data URL must be data:<type>;base64,<data>", param)
        return ChatImage(base64_image(payload, param), param)
    if "://" in text[:16]:
        return ChatImage(b"", param, url=text)
    return ChatImage(base64_image(text, param), param)


class ImageText:
    """A message's text built from its parts in order: each image leaves IMAGE_MARKER where it
    stood, so the runtime knows where each image goes. Text that holds the marker itself is
    refused, naming its part."""

    def __init__(self) -> None:
        self.pieces: list[str] = []
        self.images: list[ChatImage] = []

    def add_text(self, text: str, param: str) -> None:
        if IMAGE_MARKER in text:
            raise InputError(f"text must not contain {IMAGE_MARKER}", param)
        self.pieces.append(text)

    def add_image(self, image: ChatImage) -> None:
        self.pieces.append(IMAGE_MARKER)
        self.images.append(image)

    def text(self, sep: str = "") -> str:
        """The pieces, with `sep` between two texts only: an image adds its positions and
        nothing else, whatever the protocol joins its text blocks with."""
        out = ""
        for before, piece in zip([None, *self.pieces], self.pieces, strict=False):
            both = before not in (None, IMAGE_MARKER) and piece != IMAGE_MARKER
            out += (sep if both else "") + piece
        return out


def images_first(
    text: str, images: list[ChatImage], param: str
) -> tuple[str, tuple[ChatImage, ...]]:
    """A message's text with its images before it (Ollama's and OIP's images come beside the
    text, not among its parts; Ollama's renderer puts them first). `param` names the text."""
    parts = ImageText()
    for image in images:
        parts.add_image(image)
    if images:
        parts.add_text(text, param)
        return parts.text(), tuple(parts.images)
    return text, ()


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
        if image.url is not None and not image.data:  # the server fetches or refuses URLs
            raise InputError("an image URL reached the model unfetched", image.param)
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
