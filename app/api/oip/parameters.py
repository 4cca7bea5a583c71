"""OIP `parameters` -> runtime settings, accepting Seldon's `llm_parameters` and `kwargs` (an
image request's limits are core's, app/core/limits.py)."""

from __future__ import annotations

from typing import Any

from localoip.app.core.errors import InvalidInput
from localoip.app.core.limits import integer, number
from localoip.runtimes.capabilities import (
    FEWEST_TOKENS,
    Capability,
    ChatMessage,
    ChatRequest,
    Sampling,
)
from localoip.runtimes.wire.controls import reasoning_fields


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


def sampling(parameters: dict[str, Any], capability: Capability) -> Sampling:
    """The sampling settings of a chat or completion; max_tokens (or max_new_tokens) from
    FEWEST_TOKENS[capability]: a completion may ask for none."""
    params = merged(parameters)
    least = FEWEST_TOKENS[capability]
    max_tokens = integer(params, "max_tokens", least, 1 << 20)
    if max_tokens is None:
        max_tokens = integer(params, "max_new_tokens", least, 1 << 20)
    return Sampling(
        max_tokens=max_tokens,
        temperature=number(params, "temperature", 0.0, 2.0),
        top_p=number(params, "top_p", 0.0, 1.0),
        top_k=integer(params, "top_k", 0, 1 << 20),
        min_p=number(params, "min_p", 0.0, 1.0),
        stop=_stop(params),
        seed=integer(params, "seed", 0, 2**63 - 1),
        presence_penalty=number(params, "presence_penalty", -2.0, 2.0),
        frequency_penalty=number(params, "frequency_penalty", -2.0, 2.0),
        repeat_penalty=number(params, "repeat_penalty", 0.0, 10.0),
    )


def chat_request(messages: list[ChatMessage], parameters: dict[str, Any]) -> ChatRequest:
    """A chat with its parameters: sampling, and the chat completions' names for the rest
    (`parallel_tool_calls`, `reasoning_effort`, `chat_template_kwargs`, `max_reasoning_tokens`),
    checked as every protocol checks them."""
    params = merged(parameters)
    parallel = params.get("parallel_tool_calls")
    if parallel is not None and not isinstance(parallel, bool):
        raise InvalidInput(
            f"parameter 'parallel_tool_calls' must be true or false, got {parallel!r}",
            "parallel_tool_calls",
        )
    return ChatRequest(
        messages,
        sampling(parameters, Capability.CHAT),
        parallel_tool_calls=parallel,
        **reasoning_fields(
            params.get("reasoning_effort"),
            params.get("chat_template_kwargs"),
            params.get("max_reasoning_tokens"),
        ),
    )
