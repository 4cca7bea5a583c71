"""A chat's reasoning controls as a llama.cpp model takes them: `reasoning_effort` becomes the
switch its chat template reads (Qwen3's and SmolLM3's `enable_thinking`, Granite's and
DeepSeek V3.1's `thinking`, gpt-oss's own `reasoning_effort`, or a `/no_think` in the last
user turn where that is the template's only way), and the reasoning budget's tokens (the
format's close marker, which a spent budget forces into the generation, as llama-server's
`--reasoning-budget` does)."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from llama_cpp import Llama
from localoip.runtimes.capabilities import ChatMessage, InputError
from localoip.runtimes.llamacpp.formats.format import Format

EFFORTS = ("none", "minimal", "low", "medium", "high")
OFF = ("none", "minimal")  # efforts that switch reasoning off where only on or off exists
# A template that tests a `thinking` variable (Granite's `elif thinking`, DeepSeek V3.1's).
_THINKING = re.compile(r"\b(?:if|elif|and|or|not|set)\s+thinking\b")


def effort_of(requested: str | None, default: str | None) -> str | None:
    """The effort a chat asks for (the model's default when the request names none);
    InputError for a value that is not one of EFFORTS."""
    effort = requested if requested is not None else default
    if effort is not None and effort not in EFFORTS:
        raise InputError(
            f"reasoning_effort must be one of {', '.join(EFFORTS)}, not {effort!r}",
            "reasoning_effort",
        )
    return effort


def template_kwargs(
    source: str | None, effort: str | None, given: dict[str, Any] | None
) -> dict[str, Any] | None:
    """The template variables of a chat: the switch `source` (the template's text) reads for
    `effort` (none when it reads none, or no effort was asked for), then the request's own
    `given` ones, which win."""
    found: dict[str, Any] = {}
    text = source or ""
    if effort is not None:
        on = effort not in OFF
        if "reasoning_effort" in text:
            found["reasoning_effort"] = effort if on else "low"  # gpt-oss has no off
        elif "enable_thinking" in text:
            found["enable_thinking"] = on
        elif _THINKING.search(text):
            found["thinking"] = on
    merged = {**found, **(given or {})}
    return merged or None


def switched_off(source: str | None, effort: str | None, kwargs: dict[str, Any] | None) -> bool:
    """Whether reasoning is switched off by a `/no_think` in the last user turn: the
    template knows that switch and no variable of its own (`template_kwargs` found none)."""
    text = source or ""
    return effort in OFF and "/no_think" in text and not kwargs


def no_think(messages: list[ChatMessage]) -> list[ChatMessage]:
    """The messages with ` /no_think` after the last user turn's text."""
    at = max((i for i, m in enumerate(messages) if m.role == "user"), default=None)
    if at is None:
        return messages
    last = messages[at]
    out = list(messages)
    out[at] = replace(last, content=f"{last.content or ''} /no_think")
    return out


def close_tokens(llm: Llama, fmt: Format) -> list[int]:
    """The tokens of the format's reasoning close marker (and what follows it, harmony's next
    message header), which end a reasoning block; none for a format that does not reason."""
    r = fmt.reasoning
    if r is None:
        return []
    return llm.tokenize((r.close + r.after).encode(), add_bos=False, special=True)
