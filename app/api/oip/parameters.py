"""OIP `parameters` -> runtime settings, accepting Seldon's `llm_parameters` and `kwargs`."""

from __future__ import annotations

import re
from typing import Any

from localoip.app.core.errors import InvalidInput
from localoip.runtimes.capabilities import ImageRequest, Sampling

SIZE = re.compile(r"^(\d+)x(\d+)$")


def merged(parameters: dict[str, Any]) -> dict[str, Any]:
    """Top-level parameters, overlaid by `llm_parameters`, then by `kwargs` (Seldon's nesting)."""
    out = dict(parameters)
    for nested in ("llm_parameters", "kwargs"):
        value = out.pop(nested, None)
        if value is None:
            continue
        if not isinstance(value, dict):
            raise InvalidInput(f"parameter {nested!r} must be an object")
        out.update(value)
    return out


def _number(params: dict[str, Any], key: str, low: float, high: float) -> float | None:
    value = params.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise InvalidInput(
            f"parameter {key!r} must be a number from {low} to {high}, got {value!r}"
        )
    return float(value)


def _integer(params: dict[str, Any], key: str, low: int, high: int) -> int | None:
    value = params.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(
            f"parameter {key!r} must be an integer from {low} to {high}, got {value!r}", key
        )
    return value


def _stop(params: dict[str, Any]) -> tuple[str, ...]:
    value = params.get("stop")
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise InvalidInput(
        f"parameter 'stop' must be a string or a list of strings, got {value!r}", "stop"
    )


def sampling(parameters: dict[str, Any]) -> Sampling:
    params = merged(parameters)
    max_tokens = _integer(params, "max_tokens", 1, 1 << 20)
    if max_tokens is None:
        max_tokens = _integer(params, "max_new_tokens", 1, 1 << 20)
    return Sampling(
        max_tokens=max_tokens,
        temperature=_number(params, "temperature", 0.0, 2.0),
        top_p=_number(params, "top_p", 0.0, 1.0),
        top_k=_integer(params, "top_k", 0, 1 << 20),
        stop=_stop(params),
        seed=_integer(params, "seed", 0, 2**63 - 1),
        presence_penalty=_number(params, "presence_penalty", -2.0, 2.0),
        frequency_penalty=_number(params, "frequency_penalty", -2.0, 2.0),
        repeat_penalty=_number(params, "repeat_penalty", 0.0, 10.0),
    )


def image_request(
    prompt: str, parameters: dict[str, Any], max_images: int, max_size: int = 4096
) -> ImageRequest:
    """Image settings, within the model's limits on count and on width and height."""
    params = merged(parameters)
    width = _integer(params, "width", 8, max_size)
    height = _integer(params, "height", 8, max_size)
    size = params.get("size")
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
    negative = params.get("negative_prompt")
    if negative is not None and not isinstance(negative, str):
        raise InvalidInput("parameter 'negative_prompt' must be a string", "negative_prompt")
    steps = _integer(params, "steps", 1, 500)
    n = _integer(params, "n", 1, max_images)
    return ImageRequest(
        prompt=prompt,
        negative_prompt=negative,
        n=n or 1,
        width=width,
        height=height,
        steps=steps if steps is not None else _integer(params, "num_inference_steps", 1, 500),
        guidance_scale=_number(params, "guidance_scale", 0.0, 50.0),
        seed=_integer(params, "seed", 0, 2**63 - 1),
    )
