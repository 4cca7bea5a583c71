"""The settings column of the Chat tab (and of an arena's columns): model, system prompt,
sampling, token probabilities and reasoning effort, read from a form or from a stored reply."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar.datastructures import FormMultiDict
from localoip.app.core.errors import InvalidInput
from localoip.app.playground.forms import integer, number, text
from localoip.app.playground.records.conversations import MessageMeta
from localoip.runtimes.capabilities import Sampling
from localoip.runtimes.wire.controls import REASONING_EFFORTS

TOP_LOGPROBS = 5
"""Alternatives per token when token probabilities are asked for without a number."""


@dataclass(frozen=True, slots=True)
class ChatSettings:
    """The settings column of the Chat tab."""

    model: str
    system: str
    temperature: float | None
    max_tokens: int | None
    seed: int | None
    top_logprobs: int | None = None  # None: no token probabilities; k: k alternatives each
    reasoning_effort: str | None = None  # None: the model's default

    @classmethod
    def from_form(cls, form: FormMultiDict) -> ChatSettings:
        """The Chat tab's form; InvalidInput (400), in words, for a field out of range."""
        model = text(form, "model")
        if not model:
            raise InvalidInput("Choose a model first.", "model")
        alternatives = integer(form, "top_logprobs", "Alternatives", 0, 20)
        effort = text(form, "reasoning_effort") or None
        if effort is not None and effort not in REASONING_EFFORTS:
            raise InvalidInput(
                f"Reasoning effort must be one of {', '.join(REASONING_EFFORTS)}.",
                "reasoning_effort",
            )
        return cls(
            model=model,
            system=text(form, "system").strip(),
            temperature=number(form, "temperature", "Temperature", 0.0, 2.0),
            max_tokens=integer(form, "max_tokens", "Max tokens", 1, 1 << 20),
            seed=integer(form, "seed", "Seed", 0, 2**63 - 1),
            top_logprobs=(
                (TOP_LOGPROBS if alternatives is None else alternatives)
                if text(form, "logprobs")
                else None
            ),
            reasoning_effort=effort,
        )

    @classmethod
    def of(cls, meta: MessageMeta) -> ChatSettings:
        """The settings a stored reply was made with."""
        given = meta.parameters
        return cls(
            model=meta.model or "",
            system=str(given.get("system") or ""),
            temperature=given.get("temperature"),
            max_tokens=given.get("max_tokens"),
            seed=given.get("seed"),
            top_logprobs=given.get("top_logprobs"),
            reasoning_effort=given.get("reasoning_effort"),
        )

    def sampling(self) -> Sampling:
        """The settings the model samples with."""
        return Sampling(max_tokens=self.max_tokens, temperature=self.temperature, seed=self.seed)

    def api_fields(self) -> dict[str, float | int | bool | None]:
        """The settings by their /v1 names (None: not given)."""
        fields: dict[str, float | int | bool | None] = {
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
        }
        if self.top_logprobs is not None:
            fields |= {"logprobs": True, "top_logprobs": self.top_logprobs}
        if self.reasoning_effort is not None:
            fields["reasoning_effort"] = self.reasoning_effort
        return fields

    def parameters(self) -> dict[str, Any]:
        """The settings as a stored reply keeps them (MessageMeta.parameters)."""
        return {
            "system": self.system,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
            **({} if self.top_logprobs is None else {"top_logprobs": self.top_logprobs}),
            **(
                {} if self.reasoning_effort is None else {"reasoning_effort": self.reasoning_effort}
            ),
        }

    def summary(self) -> list[str]:
        """The settings, as the footer of a reply shows them."""
        temperature = "default" if self.temperature is None else f"{self.temperature:g}"
        items = [
            f"temperature {temperature}",
            f"max tokens {self.max_tokens or 'default'}",
            f"seed {'random' if self.seed is None else self.seed}",
        ]
        if self.top_logprobs is not None:
            items.append(f"token probabilities (top {self.top_logprobs})")
        if self.reasoning_effort is not None:
            items.append(f"reasoning effort {self.reasoning_effort}")
        if self.system:
            short = self.system if len(self.system) <= 40 else self.system[:39] + "…"
            items.append(f"system prompt “{short}”")
        return items
