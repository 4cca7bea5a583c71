"""OpenAI-shaped JSON that llama-cpp-python and OpenAI-compatible servers both speak.

Sampling settings go out under OpenAI's names; results, with their logprobs, come back in
OpenAI's chat and legacy-completion shapes.
"""

from __future__ import annotations

from typing import Any

from localoip.runtimes.capabilities import (
    CompletionRequest,
    Sampling,
    TextResult,
    TokenLogprob,
    ToolCall,
)


def sampling_fields(sampling: Sampling) -> dict[str, Any]:
    """The settings that were given, by OpenAI name; top_k and repeat_penalty are extensions.

    logit_bias is left to the caller: llama-cpp-python wants int keys, JSON wants strings.
    """
    fields = {
        "max_tokens": sampling.max_tokens,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "top_k": sampling.top_k,
        "seed": sampling.seed,
        "presence_penalty": sampling.presence_penalty,
        "frequency_penalty": sampling.frequency_penalty,
        "repeat_penalty": sampling.repeat_penalty,
    }
    fields = {k: v for k, v in fields.items() if v is not None}
    if sampling.stop:
        fields["stop"] = list(sampling.stop)
    return fields


def completion_fields(request: CompletionRequest) -> dict[str, Any]:
    """A completion's prompt and the options that were given, by OpenAI name (no sampling)."""
    fields: dict[str, Any] = {"prompt": request.prompt}
    if request.suffix is not None:
        fields["suffix"] = request.suffix
    if request.echo:
        fields["echo"] = True
    if request.logprobs is not None:
        fields["logprobs"] = request.logprobs
    return fields


def chat_logprobs(data: dict[str, Any] | None) -> tuple[TokenLogprob, ...] | None:
    """A chat choice's `logprobs` ({"content": [...]}) as TokenLogprobs."""
    if not data or data.get("content") is None:
        return None
    return tuple(
        TokenLogprob(
            item["token"],
            float(item["logprob"]),
            tuple((t["token"], float(t["logprob"])) for t in item.get("top_logprobs") or ()),
        )
        for item in data["content"]
    )


def completion_logprobs(data: dict[str, Any] | None) -> tuple[TokenLogprob, ...] | None:
    """A completion choice's legacy `logprobs` (tokens, token_logprobs, ...) as TokenLogprobs."""
    if not data or data.get("tokens") is None:
        return None
    return tuple(
        TokenLogprob(
            token,
            None if logprob is None else float(logprob),
            tuple((t, float(p)) for t, p in (top or {}).items()),
        )
        for token, logprob, top in zip(
            data["tokens"],
            data.get("token_logprobs") or [None] * len(data["tokens"]),
            data.get("top_logprobs") or [None] * len(data["tokens"]),
            strict=False,
        )
    )


def chat_result(out: dict[str, Any]) -> TextResult:
    """The first choice of a chat completion, with its tool calls and logprobs."""
    choice = out["choices"][0]
    message = choice["message"]
    return TextResult(
        text=message.get("content") or "",
        finish_reason=choice.get("finish_reason") or "stop",
        prompt_tokens=out["usage"]["prompt_tokens"],
        completion_tokens=out["usage"]["completion_tokens"],
        tool_calls=tuple(
            ToolCall(c["id"], c["function"]["name"], c["function"]["arguments"])
            for c in message.get("tool_calls") or ()
        ),
        logprobs=chat_logprobs(choice.get("logprobs")),
    )


def completion_result(out: dict[str, Any]) -> TextResult:
    """The first choice of a legacy completion, with its logprobs."""
    choice = out["choices"][0]
    return TextResult(
        text=choice["text"],
        finish_reason=choice.get("finish_reason") or "stop",
        prompt_tokens=out["usage"]["prompt_tokens"],
        completion_tokens=out["usage"]["completion_tokens"],
        logprobs=completion_logprobs(choice.get("logprobs")),
    )
