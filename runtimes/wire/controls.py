"""A chat's controls as the protocols send them, checked alike on every surface: the reasoning
effort, the chat template's variables and the reasoning budget (OpenAI chat completions and the
Responses API, OIP parameters, the playground)."""

from __future__ import annotations

from typing import Any

from localoip.runtimes.capabilities import InputError

REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high")
"""The efforts a chat may ask its model to reason with (OpenAI's `reasoning_effort`); "none"
asks for no reasoning where the model's template can turn it off."""


def reasoning_fields(
    effort: Any,
    template_kwargs: Any,
    max_reasoning_tokens: Any,
    effort_param: str = "reasoning_effort",
) -> dict[str, Any]:
    """ChatRequest's `reasoning_effort`, `template_kwargs` and `max_reasoning_tokens` from a
    request's values as sent (None: not given), checked for every protocol alike.

    `effort_param` is what the protocol calls the effort (the Responses API's is
    `reasoning.effort`). InputError, naming the field, for an effort not in REASONING_EFFORTS,
    `chat_template_kwargs` that is not an object, or a budget that is not an integer >= 0.
    """
    if effort is not None and effort not in REASONING_EFFORTS:
        raise InputError(
            f"{effort_param} must be one of {', '.join(REASONING_EFFORTS)}; got {effort!r}",
            effort_param,
        )
    if template_kwargs is not None and not isinstance(template_kwargs, dict):
        raise InputError(
            "chat_template_kwargs must be an object of the chat template's variables; "
            f"got {type(template_kwargs).__name__}",
            "chat_template_kwargs",
        )
    budget = max_reasoning_tokens
    if budget is not None and (
        not isinstance(budget, int) or isinstance(budget, bool) or budget < 0
    ):
        raise InputError(
            f"max_reasoning_tokens must be an integer >= 0; got {budget!r}", "max_reasoning_tokens"
        )
    return {
        "reasoning_effort": effort,
        "template_kwargs": template_kwargs,
        "max_reasoning_tokens": budget,
    }
