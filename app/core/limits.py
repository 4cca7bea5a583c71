"""Request limits every surface shares (OIP, /v1 and the playground): image size and count
within the model's limits, an audio upload's bytes, and the range check of one numeric field."""

from __future__ import annotations

import re
from typing import Any, Protocol

from localoip.app.core.errors import InvalidInput, TooLarge
from localoip.runtimes.capabilities import ImageRequest

SIZE = re.compile(r"^(\d+)x(\d+)$")
STEPS_AT_MOST = 500
AUDIO_BYTES = 25 * 1024 * 1024  # OpenAI's limit; a local speech model's is max_audio_bytes


def audio_bytes(size: int, options: object, param: str = "file") -> None:
    """TooLarge (413, code file_too_large) for an audio file over the model's
    `max_audio_bytes` (AUDIO_BYTES for a model without the option: a remote one)."""
    limit = getattr(options, "max_audio_bytes", AUDIO_BYTES)
    if size > limit:
        raise TooLarge(
            f"the audio file has {size} bytes; this model takes at most {limit} (max_audio_bytes)",
            param,
            "file_too_large",
        )


class ImageLimits(Protocol):
    """An image model's limits, as its options give them (DiffusersOptions, RemoteOptions)."""

    max_images: int  # the most images one request may ask for
    max_size: int  # the widest and tallest image, in pixels


def number(fields: dict[str, Any], key: str, low: float, high: float) -> float | None:
    """fields[key] as a float from `low` to `high`; None when absent. InvalidInput (400) else."""
    value = fields.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise InvalidInput(
            f"parameter {key!r} must be a number from {low} to {high}, got {value!r}"
        )
    return float(value)


def integer(fields: dict[str, Any], key: str, low: int, high: int) -> int | None:
    """fields[key] as an int from `low` to `high`; None when absent. InvalidInput (400) else."""
    value = fields.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(
            f"parameter {key!r} must be an integer from {low} to {high}, got {value!r}", key
        )
    return value


def image_request(prompt: str, fields: dict[str, Any], limits: ImageLimits) -> ImageRequest:
    """An image request from its fields (size "WxH" or width and height, n, negative_prompt,
    steps or num_inference_steps, guidance_scale, seed: those given), within the model's
    limits: width and height multiples of 8 from 8 to `limits.max_size` pixels, n from 1 to
    `limits.max_images`. InvalidInput (400), naming the field, for anything outside them."""
    max_size = limits.max_size
    width = integer(fields, "width", 8, max_size)
    height = integer(fields, "height", 8, max_size)
    size = fields.get("size")
    if size is not None:
        match = SIZE.match(size) if isinstance(size, str) else None
        if match is None:
            raise InvalidInput(f"parameter 'size' must look like '512x512', got {size!r}", "size")
        width, height = int(match[1]), int(match[2])
    for key, value in (("width", width), ("height", height)):
        if value is not None and (value % 8 or not 8 <= value <= max_size):
            raise InvalidInput(
                f"{key} must be a multiple of 8 from 8 to {max_size}, got {value}", key
            )
    negative = fields.get("negative_prompt")
    if negative is not None and not isinstance(negative, str):
        raise InvalidInput("parameter 'negative_prompt' must be a string", "negative_prompt")
    steps = integer(fields, "steps", 1, STEPS_AT_MOST)
    n = integer(fields, "n", 1, limits.max_images)
    if steps is None:
        steps = integer(fields, "num_inference_steps", 1, STEPS_AT_MOST)
    return ImageRequest(
        prompt=prompt,
        negative_prompt=negative,
        n=n or 1,
        width=width,
        height=height,
        steps=steps,
        guidance_scale=number(fields, "guidance_scale", 0.0, 50.0),
        seed=integer(fields, "seed", 0, 2**63 - 1),
    )
