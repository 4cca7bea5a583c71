"""Ollama's answers as msgspec Structs, made from neutral results: chat and generate objects
(streamed as NDJSON, the last with `done_reason` and the counts and durations), embeddings,
the model lists (/api/tags, /api/ps), /api/show, pull progress, the version and errors.

The fields follow Ollama's API reference (docs/api.md) and its Go types (api/types.go:
ChatResponse, GenerateResponse, Metrics, ListModelResponse, ProcessModelResponse,
ShowResponse, ProgressResponse, StatusError). Durations are nanoseconds; times are RFC 3339
in UTC. Fields Ollama leaves out of a frame stay absent (UNSET).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
from localoip.runtimes import capabilities as base
from msgspec import UNSET, UnsetType

DONE_REASONS = {"tool_calls": "stop"}
"""Neutral finish reasons Ollama names otherwise: a reply that calls tools ends with "stop"
(its calls in `message.tool_calls`); "stop" and "length" are its own. Ollama adds "load" and
"unload" for a request that only loads or unloads the model."""


def now() -> str:
    """The time now, as Ollama writes `created_at`: RFC 3339 in UTC, with a Z."""
    return rfc3339(datetime.now(UTC))


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class Metrics(msgspec.Struct, kw_only=True):
    """What the last object of a generation carries (api/types.go Metrics): token counts and
    nanoseconds spent in all, loading the model, reading the prompt, and generating."""

    total_duration: int | UnsetType = UNSET
    load_duration: int | UnsetType = UNSET
    prompt_eval_count: int | UnsetType = UNSET
    prompt_eval_duration: int | UnsetType = UNSET
    eval_count: int | UnsetType = UNSET
    eval_duration: int | UnsetType = UNSET


class CallFunction(msgspec.Struct, kw_only=True):
    """A call's function: its place among the reply's calls, name and arguments (an object,
    which the `ollama` clients require: {} for a call the token limit cut short)."""

    index: int
    name: str
    arguments: dict[str, Any]


class ToolCall(msgspec.Struct, kw_only=True):
    id: str
    function: CallFunction


class Message(msgspec.Struct, kw_only=True):
    """The reply, or a piece of it: `thinking` is its reasoning, `tool_calls` whole calls."""

    role: str = "assistant"
    content: str = ""
    thinking: str | UnsetType = UNSET
    tool_calls: list[ToolCall] | UnsetType = UNSET


class TokenLogprob(msgspec.Struct, kw_only=True):
    """A token, its log probability and its UTF-8 bytes."""

    token: str
    logprob: float
    bytes: list[int]


class Logprob(TokenLogprob, kw_only=True):
    """A generated token's, with the most likely alternatives asked for (`top_logprobs`)."""

    top_logprobs: list[TokenLogprob] | UnsetType = UNSET


class ChatResponse(Metrics, kw_only=True):
    """An /api/chat object: a piece of the reply (done false), or the last (done true, with
    done_reason and the metrics); `logprobs` for its tokens when they were asked for."""

    model: str
    created_at: str
    message: Message
    logprobs: list[Logprob] | UnsetType = UNSET
    done: bool
    done_reason: str | UnsetType = UNSET


class GenerateResponse(Metrics, kw_only=True):
    """An /api/generate object: as ChatResponse, the text in `response`."""

    model: str
    created_at: str
    response: str
    thinking: str | UnsetType = UNSET
    logprobs: list[Logprob] | UnsetType = UNSET
    done: bool
    done_reason: str | UnsetType = UNSET


class EmbedResponse(Metrics, kw_only=True):
    model: str
    embeddings: list[list[float]]


class EmbeddingsResponse(msgspec.Struct, kw_only=True):
    embedding: list[float]


class ModelDetails(msgspec.Struct, kw_only=True):
    """What a model is: `format` "gguf" or "safetensors", `family` its architecture,
    `parameter_size` such as "135M", `quantization_level` such as "Q4_1"; "" when unknown."""

    parent_model: str = ""
    format: str = ""
    family: str = ""
    families: list[str] | None = None
    parameter_size: str = ""
    quantization_level: str = ""


class ListModel(msgspec.Struct, kw_only=True):
    """A model of /api/tags: `name` and `model` as clients show them (with a tag), its size
    in bytes and a digest that names it."""

    name: str
    model: str
    modified_at: str
    size: int
    digest: str
    details: ModelDetails


class ListResponse(msgspec.Struct, kw_only=True):
    models: list[ListModel]


class RunningModel(ListModel, kw_only=True):
    """A model of /api/ps: loaded now, until `expires_at`, in `size` bytes (`size_vram` of
    them on a GPU), with a context of `context_length` tokens."""

    expires_at: str
    size_vram: int
    context_length: int | None = None


class ProcessResponse(msgspec.Struct, kw_only=True):
    models: list[RunningModel]


class ShowResponse(msgspec.Struct, kw_only=True):
    """/api/show: a Modelfile-like summary, the `parameters` as its PARAMETER lines, the chat
    `template`, the details, `model_info` (GGUF-style keys) and `capabilities` ("completion",
    "tools", "thinking", "vision", "insert", "embedding")."""

    modelfile: str
    parameters: str
    template: str
    details: ModelDetails
    model_info: dict[str, Any]
    capabilities: list[str]
    modified_at: str


class ProgressResponse(msgspec.Struct, kw_only=True):
    """A line of /api/pull: a status, with a file's bytes done and in all while it downloads."""

    status: str
    digest: str | UnsetType = UNSET
    total: int | UnsetType = UNSET
    completed: int | UnsetType = UNSET


class VersionResponse(msgspec.Struct, kw_only=True):
    """/api/version: the Ollama API version this server follows, and localoip's own."""

    version: str
    localoip: str


class ErrorResponse(msgspec.Struct, kw_only=True):
    """Every error, as a body or as the last NDJSON line of a stream."""

    error: str


# -- neutral results -> Ollama objects -------------------------------------------------------


def tool_calls(calls: tuple[base.ToolCall, ...]) -> list[ToolCall]:
    return [
        ToolCall(
            id=c.id, function=CallFunction(index=i, name=c.name, arguments=c.arguments_object())
        )
        for i, c in enumerate(calls)
    ]


def message(text: str, reasoning: str = "", calls: tuple[base.ToolCall, ...] = ()) -> Message:
    """The reply's message: its text, its reasoning when there is any, its calls if any."""
    out = Message(content=text)
    if reasoning:
        out.thinking = reasoning
    if calls:
        out.tool_calls = tool_calls(calls)
    return out


def done_reason(finish_reason: str) -> str:
    return DONE_REASONS.get(finish_reason, finish_reason)


def logprobs(tokens: tuple[base.TokenLogprob, ...] | None) -> list[Logprob] | UnsetType:
    """Tokens' log probabilities as Ollama sends them; UNSET when none were asked for. A
    prompt token nothing predicts (an echo's first) has no place in a reply, so it is left out."""
    if tokens is None:
        return UNSET
    out = []
    for lp in tokens:
        if lp.logprob is None:
            continue
        raw = lp.token.encode() if lp.token_bytes is None else lp.token_bytes
        tops = lp.top_bytes or tuple(t.encode() for t, _ in lp.top)
        out.append(
            Logprob(
                token=lp.token,
                logprob=lp.logprob,
                bytes=list(raw),
                top_logprobs=[
                    TokenLogprob(token=t, logprob=p, bytes=list(b))
                    for (t, p), b in zip(lp.top, tops, strict=True)
                ],
            )
        )
    return out
