"""OpenAI request bodies (chat, completions, embeddings, images) as msgspec Structs, read into
the neutral requests of runtimes.capabilities, and neutral requests written as OpenAI fields.

Fields the server does not use are ignored. As in OpenAI's API, an optional field may also be
sent as null, meaning its default.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from localoip.runtimes import capabilities as base
from localoip.runtimes.capabilities import InputError
from localoip.runtimes.wire.controls import reasoning_fields
from localoip.runtimes.wire.images import ImageText, data_url, url_image
from msgspec import Meta

R = TypeVar("R", base.ChatRequest, base.CompletionRequest)

Temperature = Annotated[float, Meta(ge=0.0, le=2.0)]
Penalty = Annotated[float, Meta(ge=-2.0, le=2.0)]
Probability = Annotated[float, Meta(ge=0.0, le=1.0)]
PositiveInt = Annotated[int, Meta(ge=1)]
MaxTokens = Annotated[int, Meta(ge=base.FEWEST_TOKENS[base.Capability.CHAT])]
Seed = Annotated[int, Meta(ge=-(2**63), le=2**63 - 1)]
Stop = str | Annotated[list[str], Meta(max_length=16)] | None
Metadata = Annotated[
    dict[Annotated[str, Meta(max_length=64)], Annotated[str, Meta(max_length=512)]],
    Meta(max_length=16),
]
"""OpenAI's metadata: at most 16 string pairs, keys up to 64 characters, values up to 512."""


class Sampling(msgspec.Struct, kw_only=True):
    """Settings shared by chat and completions."""

    model: str | None = None
    max_tokens: MaxTokens | None = None
    temperature: Temperature | None = None
    top_p: Probability | None = None
    top_k: Annotated[int, Meta(ge=0)] | None = None
    min_p: Probability | None = None  # vLLM's and llama-server's extension
    stop: Stop = None
    seed: Seed | None = None
    presence_penalty: Penalty | None = None
    frequency_penalty: Penalty | None = None
    repeat_penalty: Annotated[float, Meta(ge=0.0)] | None = None
    logit_bias: dict[str, Annotated[float, Meta(ge=-100.0, le=100.0)]] | None = None
    n: Annotated[int, Meta(ge=1, le=16)] | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    # localoip's: the same text for the same request, whatever the cache held or shared the
    # batch (runs one at a time); None: the model's `deterministic` option
    deterministic: bool | None = None
    # localoip's: false turns the model's speculative decoding off for this request
    speculative: bool | None = None


class StreamOptions(msgspec.Struct, kw_only=True):
    include_usage: bool = False


class ImageURL(msgspec.Struct, kw_only=True):
    url: str
    detail: str | None = None  # accepted and not used: the projector fixes the resolution


class ContentPart(msgspec.Struct, kw_only=True):
    type: str
    text: str | None = None
    image_url: ImageURL | str | None = None


class FunctionCall(msgspec.Struct, kw_only=True):
    name: str
    arguments: str


class MessageToolCall(msgspec.Struct, kw_only=True):
    """A whole tool call, in an assistant message sent or answered."""

    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class Message(msgspec.Struct, kw_only=True):
    """A message of the conversation; an assistant's may carry the reasoning it was answered
    with (`reasoning_content`, as replies give it), which goes back to the model only as its
    template renders it."""

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[MessageToolCall] | None = None
    tool_call_id: str | None = None
    reasoning_content: str | None = None


class FunctionDefinition(msgspec.Struct, kw_only=True):
    name: str
    description: str = ""
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ToolDefinition(msgspec.Struct, kw_only=True):
    type: Literal["function"]
    function: FunctionDefinition


class ToolChoiceFunction(msgspec.Struct, kw_only=True):
    name: str


class NamedToolChoice(msgspec.Struct, kw_only=True):
    type: Literal["function"]
    function: ToolChoiceFunction


class JsonSchemaFormat(msgspec.Struct, kw_only=True):
    name: str
    schema: dict[str, Any] | None = None
    description: str | None = None
    strict: bool | None = None


class ResponseFormat(msgspec.Struct, kw_only=True):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None


class ChatCompletionRequest(Sampling, kw_only=True):
    messages: Annotated[list[Message], Meta(min_length=1)]
    max_completion_tokens: MaxTokens | None = None
    logprobs: bool | None = None
    top_logprobs: Annotated[int, Meta(ge=0, le=20)] | None = None
    response_format: ResponseFormat | None = None
    tools: list[ToolDefinition] | None = None
    tool_choice: Literal["auto", "none", "required"] | NamedToolChoice | None = None
    store: bool | None = None
    metadata: Metadata | None = None
    # vLLM's extension: the last message is the assistant's reply so far, to be continued.
    continue_final_message: bool | None = None
    parallel_tool_calls: bool | None = None
    # Checked by capabilities.reasoning_fields, as every protocol's are:
    reasoning_effort: Any = None
    chat_template_kwargs: Any = None  # vLLM's and llama-server's: the template's variables
    max_reasoning_tokens: Any = None  # localoip's: past it the model closes its reasoning
    # localoip's, as the Responses API's: fit a prompt longer than the context ("auto") or not
    truncation: Literal["auto", "disabled"] | None = None


class CompletionRequest(Sampling, kw_only=True):
    max_tokens: Annotated[int, Meta(ge=base.FEWEST_TOKENS[base.Capability.COMPLETION])] | None = (
        None
    )
    # A string, or a list of strings, of token ids, or of lists of token ids (completion_requests
    # tells them apart: msgspec takes one array type in a union)
    prompt: str | Annotated[list[str | int | list[int]], Meta(min_length=1)]
    suffix: str | None = None
    echo: bool | None = None
    logprobs: Annotated[int, Meta(ge=0, le=20)] | None = None


class EmbeddingRequest(msgspec.Struct, kw_only=True):
    input: str | Annotated[list[str], Meta(min_length=1, max_length=2048)]
    model: str | None = None
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: PositiveInt | None = None


class ImageGenerationRequest(msgspec.Struct, kw_only=True):
    prompt: Annotated[str, Meta(min_length=1)]
    model: str | None = None
    n: Annotated[int, Meta(ge=1, le=10)] | None = None
    size: str | None = None
    response_format: Literal["url", "b64_json"] | None = None
    # Beyond OpenAI's fields, sent with the SDK's `extra_body`:
    negative_prompt: str | None = None
    steps: Annotated[int, Meta(ge=1, le=500)] | None = None
    seed: Annotated[int, Meta(ge=0, le=2**63 - 1)] | None = None
    guidance_scale: Annotated[float, Meta(ge=0.0, le=50.0)] | None = None


# -- OpenAI requests -> neutral requests ----------------------------------------------------


def sampling(req: Sampling, max_tokens: int | None) -> base.Sampling:
    """The sampling settings of a chat or completion request; logit_bias keys are token ids."""
    stop = (req.stop,) if isinstance(req.stop, str) else tuple(req.stop or ())
    bias = None
    if req.logit_bias:
        try:
            bias = {int(token): value for token, value in req.logit_bias.items()}
        except ValueError:
            raise InputError("logit_bias keys must be token ids (integers)", "logit_bias") from None
    return base.Sampling(
        max_tokens=max_tokens,
        temperature=req.temperature,
        top_p=req.top_p,
        top_k=req.top_k,
        min_p=req.min_p,
        stop=stop,
        seed=req.seed,
        presence_penalty=req.presence_penalty,
        frequency_penalty=req.frequency_penalty,
        repeat_penalty=req.repeat_penalty,
        logit_bias=bias,
        deterministic=req.deterministic,
        speculative=req.speculative,
    )


def per_choice(request: R, index: int) -> R:
    """The request for choice `index` of n: a given seed advances, so choices differ."""
    seed = request.sampling.seed
    if seed is None or index == 0:
        return request
    return replace(request, sampling=replace(request.sampling, seed=seed + index))


def _text(
    content: str | list[ContentPart] | None, where: str
) -> tuple[str | None, tuple[base.ChatImage, ...]]:
    """A message's text, with IMAGE_MARKER where each image part stood, and its images."""
    if content is None or isinstance(content, str):
        return content, ()
    parts = ImageText()
    for i, part in enumerate(content):
        param = f"{where}.content[{i}]"
        if part.type == "image_url" and part.image_url is not None:
            url = part.image_url if isinstance(part.image_url, str) else part.image_url.url
            parts.add_image(url_image(url, param))
            continue
        if part.type != "text" or part.text is None:
            raise InputError(
                f"content part type {part.type!r} is not supported; send text or image_url parts",
                f"{param}.type",
            )
        parts.add_text(part.text, f"{param}.text")
    return parts.text(), tuple(parts.images)


def content_parts(m: base.ChatMessage) -> str | list[dict[str, Any]] | None:
    """A message's content as OpenAI sends it (the inverse of how it is read): its text, or
    text and image_url parts where it carries images, each as a data: URL."""
    if not m.images or m.content is None:
        return m.content
    parts: list[dict[str, Any]] = []
    for i, text in enumerate(m.content.split(base.IMAGE_MARKER)):
        if text:
            parts.append({"type": "text", "text": text})
        if i < len(m.images):
            image = m.images[i]
            url = image.url if image.url and not image.data else data_url(image.data)
            parts.append({"type": "image_url", "image_url": {"url": url}})
    return parts


def chat_request(req: ChatCompletionRequest) -> base.ChatRequest:
    """The neutral chat; InputError names the field that cannot be served as sent."""
    messages = []
    for i, m in enumerate(req.messages):
        calls = tuple(
            base.ToolCall(c.id, c.function.name, c.function.arguments) for c in m.tool_calls or ()
        )
        text, images = _text(m.content, f"messages[{i}]")
        messages.append(
            base.ChatMessage(
                m.role, text, m.name, calls, m.tool_call_id, m.reasoning_content, images
            )
        )
    tools = tuple(
        base.Tool(
            t.function.name, t.function.description, t.function.parameters, bool(t.function.strict)
        )
        for t in req.tools or ()
    )
    choice = _tool_choice(req.tool_choice, tools)
    schema = _json_schema(req.response_format)
    if req.top_logprobs is not None and not req.logprobs:
        raise InputError("top_logprobs needs logprobs to be true", "top_logprobs")
    return base.ChatRequest(
        messages=messages,
        sampling=sampling(req, req.max_completion_tokens or req.max_tokens),
        tools=tools,
        tool_choice=choice,
        json_schema=schema,
        logprobs=(req.top_logprobs or 0) if req.logprobs else None,
        continue_final=_continues(req),
        parallel_tool_calls=req.parallel_tool_calls,
        truncation=req.truncation,
        **reasoning_fields(
            req.reasoning_effort, req.chat_template_kwargs, req.max_reasoning_tokens
        ),
    )


def _tool_choice(
    choice: Literal["auto", "none", "required"] | NamedToolChoice | None,
    tools: tuple[base.Tool, ...],
) -> str:
    if isinstance(choice, NamedToolChoice):
        if choice.function.name not in {t.name for t in tools}:
            raise InputError(
                f"tool_choice names {choice.function.name!r}, which is not in tools",
                "tool_choice",
            )
        return choice.function.name
    if choice == "required" and not tools:
        raise InputError("tool_choice 'required' needs at least one tool", "tool_choice")
    return choice or "auto"


def _json_schema(response_format: ResponseFormat | None) -> dict[str, Any] | None:
    """The schema response_format asks for: None for text, {} for any JSON object."""
    if response_format is None or response_format.type == "text":
        return None
    if response_format.type == "json_object":
        return {}
    if response_format.json_schema is None:
        raise InputError(
            "response_format type 'json_schema' needs a json_schema object",
            "response_format.json_schema",
        )
    return response_format.json_schema.schema or {"type": "object"}


def _continues(req: ChatCompletionRequest) -> bool:
    """Whether to continue the final message, which must then be the assistant's."""
    if not req.continue_final_message:
        return False
    if req.messages[-1].role != "assistant" or len(req.messages) < 2:
        raise InputError(
            "continue_final_message needs an assistant message last, after another message",
            "continue_final_message",
        )
    return True


def completion_requests(req: CompletionRequest) -> list[base.CompletionRequest]:
    """One neutral request per prompt; OpenAI's default of 16 tokens applies (0 generates
    nothing: an echo then gives the prompt, with its logprobs when asked)."""
    prompts = _prompts(req.prompt)
    settings = sampling(req, 16 if req.max_tokens is None else req.max_tokens)
    return [
        base.CompletionRequest(p, settings, req.suffix, bool(req.echo), req.logprobs)
        for p in prompts
    ]


def _prompts(prompt: str | list[str | int | list[int]]) -> list[str | tuple[int, ...]]:
    """The prompts a completion's `prompt` holds: OpenAI's string, list of strings, list of
    token ids, or list of lists of token ids. InputError (param "prompt") for a mix."""
    if isinstance(prompt, str):
        return [prompt]
    if all(isinstance(p, str) for p in prompt):
        return list(prompt)  # type: ignore[arg-type]
    if all(isinstance(p, int) for p in prompt):
        return [tuple(prompt)]  # type: ignore[arg-type]
    if all(isinstance(p, list) and p for p in prompt):
        return [tuple(p) for p in prompt]  # type: ignore[union-attr]
    raise InputError(
        "prompt must be a string, a list of strings, a list of token ids, or a list of "
        "non-empty lists of token ids",
        "prompt",
    )


# -- neutral requests -> OpenAI fields -------------------------------------------------------


def sampling_fields(sampling: base.Sampling) -> dict[str, Any]:
    """The settings that were given, by OpenAI name; top_k, min_p and repeat_penalty are
    extensions (llama-cpp-python's, vLLM's and llama-server's names).

    logit_bias is left to the caller: llama-cpp-python wants int keys, JSON wants strings.
    """
    fields = {
        "max_tokens": sampling.max_tokens,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "top_k": sampling.top_k,
        "min_p": sampling.min_p,
        "seed": sampling.seed,
        "presence_penalty": sampling.presence_penalty,
        "frequency_penalty": sampling.frequency_penalty,
        "repeat_penalty": sampling.repeat_penalty,
    }
    fields = {k: v for k, v in fields.items() if v is not None}
    if sampling.stop:
        fields["stop"] = list(sampling.stop)
    return fields


def completion_fields(request: base.CompletionRequest) -> dict[str, Any]:
    """A completion's prompt and the options that were given, by OpenAI name (no sampling)."""
    prompt = request.prompt
    fields: dict[str, Any] = {"prompt": prompt if isinstance(prompt, str) else list(prompt)}
    if request.suffix is not None:
        fields["suffix"] = request.suffix
    if request.echo:
        fields["echo"] = True
    if request.logprobs is not None:
        fields["logprobs"] = request.logprobs
    return fields
