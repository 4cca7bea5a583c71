"""Ollama's request bodies as msgspec Structs, read into the neutral requests of
runtimes.capabilities.

The fields follow Ollama's API reference (docs/api.md of ollama/ollama) and its Go types
(api/types.go: ChatRequest, GenerateRequest, Message, ToolCall, Tool, Options, EmbedRequest,
EmbeddingRequest, ShowRequest, PullRequest, DeleteRequest). As Ollama does, a body's unknown
fields and unknown `options` are ignored; a known field of the wrong type or out of range is an
InputError naming it. `model` may also come as the older `name` (show, pull, delete).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

import msgspec
from localoip.runtimes import capabilities as base
from localoip.runtimes.capabilities import Capability, InputError
from localoip.runtimes.options import seconds_of
from localoip.runtimes.wire.controls import reasoning_fields
from localoip.runtimes.wire.images import base64_image, images_first
from msgspec import Meta

Probability = Annotated[float, Meta(ge=0.0, le=1.0)]
Seed = Annotated[int, Meta(ge=-(2**63), le=2**63 - 1)]
KeepAlive = float | str | None
"""Seconds, or a Go duration such as "5m" or "1h30m"; negative keeps the model loaded."""


class Options(msgspec.Struct, kw_only=True):
    """A generation's `options` (api/types.go Options and Runner). Each is applied as its
    llama.cpp namesake; `num_ctx` is served within the model's configured `n_ctx` (a
    context is sized when the model loads, not per request). Others Ollama knows
    (`num_keep`, `typical_p`, `repeat_last_n`, `mirostat*`, `num_gpu`, `num_thread`, ...)
    are ignored, as unknown options are."""

    num_ctx: Annotated[int, Meta(ge=1)] | None = None
    num_predict: Annotated[int, Meta(ge=-2)] | None = None  # -1: no limit; -2: fill the context
    temperature: Annotated[float, Meta(ge=0.0)] | None = None
    top_p: Probability | None = None
    top_k: Annotated[int, Meta(ge=0)] | None = None
    min_p: Probability | None = None
    seed: Seed | None = None
    stop: str | list[str] | None = None
    repeat_penalty: Annotated[float, Meta(ge=0.0)] | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None


class CallFunction(msgspec.Struct, kw_only=True):
    """A tool call's function: its name and arguments (an object; a JSON text is taken too)."""

    name: str
    arguments: dict[str, Any] | str = {}
    index: int | None = None


class ToolCall(msgspec.Struct, kw_only=True):
    """A call an assistant message made; Ollama's calls carry no id before 0.12, so one is
    made up when there is none (`call_id`)."""

    function: CallFunction
    id: str | None = None


class Message(msgspec.Struct, kw_only=True):
    """A chat message: `thinking` is an assistant turn's reasoning (rendered where the
    template shows it), `tool_name` the tool a `tool` message answers."""

    role: Literal["system", "user", "assistant", "tool"]
    content: str | None = None
    images: list[str] | None = None
    tool_calls: list[ToolCall] | None = None
    thinking: str | None = None
    tool_name: str | None = None
    tool_call_id: str | None = None


class ToolFunction(msgspec.Struct, kw_only=True):
    name: str
    description: str = ""
    parameters: dict[str, Any] | None = None


class Tool(msgspec.Struct, kw_only=True):
    """A function the model may call (api/types.go Tool), as OpenAI's tools are written."""

    type: Literal["function"] = "function"
    function: ToolFunction


class Generation(msgspec.Struct, kw_only=True):
    """What /api/chat and /api/generate share: `format` is "json" or a JSON schema (an
    object), `think` a bool or a level, `stream` true unless false, `logprobs` each generated
    token's log probability with `top_logprobs` (0-20) alternatives."""

    model: str = ""
    format: Any = None
    think: bool | str | None = None
    stream: bool | None = None
    keep_alive: KeepAlive = None
    options: Options | None = None
    logprobs: bool = False
    top_logprobs: Annotated[int, Meta(ge=0, le=20)] | None = None

    @property
    def streams(self) -> bool:
        return self.stream is not False

    @property
    def alternatives(self) -> int | None:
        """The logprobs asked for: None for none, else how many alternatives each token gets
        (`top_logprobs` without `logprobs` asks for nothing, as in Ollama)."""
        return (self.top_logprobs or 0) if self.logprobs else None


class ChatRequest(Generation, kw_only=True):
    """POST /api/chat. No messages: the model is loaded (or with keep_alive 0, unloaded)."""

    messages: list[Message] = []
    tools: list[Tool] | None = None


class GenerateRequest(Generation, kw_only=True):
    """POST /api/generate. `raw` sends the prompt as it is (no chat template); a `suffix`
    asks for fill-in-the-middle. No prompt: the model is loaded (or unloaded)."""

    prompt: str | None = None
    suffix: str | None = None
    system: str | None = None
    template: str | None = None
    context: list[int] | None = None
    raw: bool = False
    images: list[str] | None = None


class EmbedRequest(msgspec.Struct, kw_only=True):
    """POST /api/embed: one text or a list; the vectors come back L2-normalised."""

    model: str = ""
    input: str | list[str] = []
    truncate: bool = True
    dimensions: Annotated[int, Meta(ge=1)] | None = None
    keep_alive: KeepAlive = None
    options: Options | None = None


class EmbeddingsRequest(msgspec.Struct, kw_only=True):
    """POST /api/embeddings, the older route: one `prompt`, its vector as the model gives it."""

    model: str = ""
    prompt: str = ""
    keep_alive: KeepAlive = None
    options: Options | None = None


class Named(msgspec.Struct, kw_only=True):
    """A body that names a model: show, delete; `name` is the older field."""

    model: str = ""
    name: str = ""
    verbose: bool = False

    @property
    def named(self) -> str:
        return self.model or self.name


class PullRequest(Named, kw_only=True):
    """POST /api/pull: progress streams unless `stream` is false."""

    insecure: bool = False
    stream: bool | None = None


# -- Ollama requests -> neutral requests ----------------------------------------------------


def sampling(options: Options | None, capability: Capability) -> base.Sampling:
    """The sampling settings of `options`; num_predict -1 and -2 leave the length open, and
    one below the capability's fewest tokens (FEWEST_TOKENS) is an InputError."""
    if options is None:
        return base.Sampling()
    length = options.num_predict
    if length is not None and length < 0:
        length = None
    elif length is not None and length < base.FEWEST_TOKENS[capability]:
        raise InputError(
            f"options.num_predict must be at least {base.FEWEST_TOKENS[capability]}, or -1",
            "options.num_predict",
        )
    stop = options.stop
    return base.Sampling(
        max_tokens=length,
        temperature=options.temperature,
        top_p=options.top_p,
        top_k=options.top_k,
        min_p=options.min_p,
        stop=(stop,) if isinstance(stop, str) else tuple(stop or ()),
        seed=options.seed,
        presence_penalty=options.presence_penalty,
        frequency_penalty=options.frequency_penalty,
        repeat_penalty=options.repeat_penalty,
    )


def json_schema(fmt: Any) -> dict[str, Any] | None:
    """The schema `format` asks the reply to follow: None for none ("" or absent), {} for
    any JSON object ("json"). InputError for anything else than an object schema."""
    if fmt is None or fmt == "":
        return None
    if fmt == "json":
        return {}
    if isinstance(fmt, dict):
        return fmt
    raise InputError(f'format must be "json" or a JSON schema object, not {fmt!r}', "format")


def effort(think: bool | str | None) -> str | None:
    """The reasoning effort `think` asks for: false is "none", true "medium" (Ollama's for
    gpt-oss), a level ("low", "medium", "high") itself; None leaves the model's default."""
    if think is None:
        return None
    if isinstance(think, bool):
        return "medium" if think else "none"
    return reasoning_fields(think, None, None, effort_param="think")["reasoning_effort"]


def call_id(message: int, call: int) -> str:
    """The id of call `call` of message `message` when the client sent none: nine
    characters, the length Mistral's templates insist on."""
    return f"call{message:03d}{call:02d}"


def _arguments(arguments: dict[str, Any] | str, where: str) -> str:
    if isinstance(arguments, dict):
        return json.dumps(arguments, ensure_ascii=False)
    try:
        decoded = json.loads(arguments or "{}")
    except json.JSONDecodeError:
        decoded = None
    if not isinstance(decoded, dict):
        raise InputError("a tool call's arguments must be a JSON object", where)
    return json.dumps(decoded, ensure_ascii=False)


def messages(sent: list[Message]) -> list[base.ChatMessage]:
    """The conversation as neutral messages. A `tool` message answers the first call of the
    last assistant turn that has not been answered, of its `tool_name` when it names one.
    A message's `images` (base64) stand before its text. InputError for images that are not
    base64 and for arguments that are no object."""
    out: list[base.ChatMessage] = []
    unanswered: list[base.ToolCall] = []
    for i, m in enumerate(sent):
        calls = tuple(
            base.ToolCall(
                c.id or call_id(i, k),
                c.function.name,
                _arguments(c.function.arguments, f"messages[{i}].tool_calls[{k}]"),
            )
            for k, c in enumerate(m.tool_calls or ())
        )
        answers = m.tool_call_id
        if m.role == "assistant":
            unanswered = list(calls)
        elif m.role == "tool":
            fits = [c for c in unanswered if answers in (None, c.id)]
            match = next((c for c in fits if m.tool_name in (None, c.name)), None)
            if match is not None:
                unanswered.remove(match)
                answers = match.id
        name = m.tool_name if m.role == "tool" else None
        text = m.content or (None if calls else "")
        images = _images(m.images, f"messages[{i}].images")
        if images:
            text, images = images_first(text or "", images, f"messages[{i}].content")
        out.append(base.ChatMessage(m.role, text, name, calls, answers, m.thinking, images))
    return out


def _images(sent: list[str] | None, where: str) -> list[base.ChatImage]:
    """`images`, each base64 (the clients encode a path or bytes so); named `where[k]`."""
    return [
        base.ChatImage(base64_image(data, f"{where}[{k}]"), f"{where}[{k}]")
        for k, data in enumerate(sent or ())
    ]


def tools(sent: list[Tool] | None) -> tuple[base.Tool, ...]:
    return tuple(
        base.Tool(t.function.name, t.function.description, t.function.parameters)
        for t in sent or ()
    )


NAMES = base.FieldNames(json_schema="format", tool_parameters="tools[{}].function.parameters")
"""What Ollama calls the fields a runtime's errors name."""


def chat_request(req: ChatRequest) -> base.ChatRequest:
    """The neutral chat of /api/chat; InputError names the field that cannot be served."""
    return base.ChatRequest(
        messages=messages(req.messages),
        sampling=sampling(req.options, Capability.CHAT),
        tools=tools(req.tools),
        json_schema=json_schema(req.format),
        logprobs=req.alternatives,
        names=NAMES,
        reasoning_effort=effort(req.think),
        # Ollama drops the oldest messages to fit its context (its server/prompt.go), so its
        # requests are cut by the model's policy, or by the rolling window under `error`
        truncation="auto",
    )


def generate_request(
    req: GenerateRequest,
) -> tuple[Capability, base.ChatRequest | base.CompletionRequest]:
    """The neutral request of /api/generate: a completion of the prompt as it is when `raw`
    or with a `suffix` (fill-in-the-middle), else a chat of the system and prompt turns, as
    Ollama renders a prompt with the model's template; `images` go with the prompt's turn.
    InputError for images with `raw` or a `suffix` (they need the chat template), a
    `template` (localoip renders the model's own) and a `context` (send the conversation to
    /api/chat)."""
    if req.template:
        raise InputError(
            "template is not supported: prompts are rendered with the model's own chat "
            'template (or send "raw": true with the prompt written out)',
            "template",
        )
    if req.context:
        raise InputError(
            "context is not supported: send the conversation as messages to /api/chat",
            "context",
        )
    prompt = req.prompt or ""
    images = _images(req.images, "images")
    if req.raw or req.suffix is not None:
        if images:
            raise InputError(
                'images need the chat template: leave out "raw" and "suffix"', "images"
            )
        if req.format not in (None, "") or req.think is not None:
            raise InputError(
                'format and think need the chat template: leave out "raw" and "suffix"',
                "format" if req.format not in (None, "") else "think",
            )
        return Capability.COMPLETION, base.CompletionRequest(
            prompt,
            sampling(req.options, Capability.COMPLETION),
            suffix=req.suffix,
            logprobs=req.alternatives,
            truncation="auto",  # Ollama's runner keeps the end of a prompt too long
        )
    turns = [base.ChatMessage("system", req.system)] if req.system else []
    text, pictures = images_first(prompt, images, "prompt")
    return Capability.CHAT, base.ChatRequest(
        messages=[*turns, base.ChatMessage("user", text, images=pictures)],
        sampling=sampling(req.options, Capability.CHAT),
        json_schema=json_schema(req.format),
        logprobs=req.alternatives,
        names=NAMES,
        reasoning_effort=effort(req.think),
        truncation="auto",
    )


def keep_alive_seconds(value: KeepAlive) -> float | None:
    """`keep_alive` in seconds: a number of seconds, or a Go duration ("5m", "1h30m", "-1");
    None when it is not given, negative to stay loaded. InputError for anything else."""
    if value is None:
        return None
    try:
        return seconds_of(value)
    except ValueError:
        raise InputError(
            f'keep_alive must be seconds or a duration such as "5m", not {value!r}', "keep_alive"
        ) from None


def hub_source(name: str) -> str | None:
    """The localoip `hf:` source an Ollama name of a Hugging Face model stands for:
    `hf.co/owner/repo:QUANT` (or huggingface.co/...) is `hf:owner/repo:QUANT`, and its
    `:latest` tag (Ollama's default) the repository's default quant. None for other names."""
    for prefix in ("hf.co/", "huggingface.co/"):
        if name.lower().startswith(prefix):
            ref = name[len(prefix) :]
            return "hf:" + (ref.removesuffix(":latest") if ref.endswith(":latest") else ref)
    return None
