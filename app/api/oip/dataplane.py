"""The OIP data plane: health, metadata, infer, generate and the repository, over the registry.

Knows tensors and capabilities, not HTTP. The tensor contract follows Seldon Core 2:
chat `role`/`content`[/`type`][/`image`] -> `role`/`content`; completion `prompt` -> `text`;
embeddings `input` -> `embedding`; images `prompt` -> `image` (PNG); rerank `query` and
`documents` -> `scores`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from importlib.metadata import version
from typing import Any

import numpy as np
from localoip.app.api.oip import parameters
from localoip.app.api.oip.codecs import Output, Tensor
from localoip.app.api.oip.types import (
    GenerateRequest,
    GenerateResponse,
    MetadataTensor,
    ModelMetadata,
    RepositoryModel,
    ServerMetadata,
)
from localoip.app.core.downloads import download_status
from localoip.app.core.errors import InvalidInput, ModelNotFound
from localoip.app.core.limits import audio_bytes, image_request
from localoip.app.core.model_facts import facts_fields, model_facts
from localoip.app.core.registry import ModelHandle, ModelState, Registry
from localoip.app.core.rerank import rerank
from localoip.app.http.truncation import Watch
from localoip.runtimes.capabilities import (
    Capability,
    ChatImage,
    ChatMessage,
    CompletionRequest,
    TextDelta,
    Truncated,
)
from localoip.runtimes.transcripts import TranscriptionRequest
from localoip.runtimes.wire.images import base64_image, images_first

MODEL_VERSION = "1"
EXTENSIONS = ["model_repository", "binary_tensor_data", "generate"]


def _bytes(name: str, shape: list[int], optional: bool = False) -> MetadataTensor:
    return MetadataTensor(
        name=name,
        datatype="BYTES",
        shape=shape,
        parameters={"content_type": "str", **({"optional": True} if optional else {})},
    )


IMAGE_INPUT = MetadataTensor(
    name="image",
    datatype="BYTES",
    shape=[-1],
    parameters={"content_type": "image", "optional": True},
)
"""A vision chat model's images (PNG, JPEG, ...; raw bytes in binary form, base64 in JSON),
read with the last user message."""

CONTRACT: dict[Capability, tuple[list[MetadataTensor], list[MetadataTensor]]] = {
    Capability.CHAT: (
        [_bytes("role", [-1]), _bytes("content", [-1]), _bytes("type", [-1], optional=True)],
        [_bytes("role", [1]), _bytes("content", [1]), _bytes("reasoning", [1], optional=True)],
    ),
    Capability.COMPLETION: ([_bytes("prompt", [-1])], [_bytes("text", [-1])]),
    Capability.EMBED: (
        [_bytes("input", [-1])],
        [MetadataTensor(name="embedding", datatype="FP32", shape=[-1, -1])],
    ),
    Capability.IMAGE: (
        [_bytes("prompt", [1])],
        [
            MetadataTensor(
                name="image", datatype="BYTES", shape=[-1], parameters={"content_type": "image/png"}
            )
        ],
    ),
    Capability.RERANK: (
        [_bytes("query", [1]), _bytes("documents", [-1])],
        [MetadataTensor(name="scores", datatype="FP32", shape=[-1])],
    ),
    # speech to text: the audio file (raw bytes in binary form, base64 in JSON); language,
    # prompt, temperature and task ("translate") are parameters, as on /v1/audio
    Capability.TRANSCRIBE: (
        [
            MetadataTensor(
                name="audio", datatype="BYTES", shape=[1], parameters={"content_type": "audio"}
            )
        ],
        [_bytes("text", [1])],
    ),
}
FINISH_REASONS = {"stop": "stop_sequence", "length": "length"}


def _message_content(raw: str, kind: str | None, index: int) -> str:
    """One chat message's text. Seldon JSON-encodes contents; text parts are joined."""
    if kind in ("text", "str", "string"):
        return raw
    try:
        value = json.loads(raw)
    except ValueError:
        if kind == "json":
            raise InvalidInput(f"content[{index}] has type 'json' but is not valid JSON") from None
        return raw
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(p, dict) and "text" in p for p in value):
        return "".join(str(p["text"]) for p in value)
    if kind == "json":
        raise InvalidInput(f"content[{index}] must be a JSON string or a list of text parts")
    return raw


def chat_messages(tensors: dict[str, Tensor]) -> list[ChatMessage]:
    """The chat the tensors hold: one message per `role` and `content` element, and the
    `image` elements, if any, with the last user message (before its text)."""
    roles = tensors["role"].strings()
    contents = tensors["content"].strings()
    kinds: list[str | None] = (
        tensors["type"].strings() if "type" in tensors else [None] * len(roles)
    )
    if not len(roles) == len(contents) == len(kinds):
        raise InvalidInput(
            f"role, content (and type) need one element per message; got {len(roles)} roles, "
            f"{len(contents)} contents and {len(kinds)} types"
        )
    if not roles:
        raise InvalidInput("a chat needs at least one message")
    messages = [
        ChatMessage(role=role, content=_message_content(content, kind, i))
        for i, (role, content, kind) in enumerate(zip(roles, contents, kinds, strict=True))
    ]
    images = _images(tensors["image"]) if "image" in tensors else []
    if images:
        last = max((i for i, m in enumerate(messages) if m.role == "user"), default=None)
        if last is None:
            raise InvalidInput("input 'image' goes with the last user message; there is none")
        text, pictures = images_first(messages[last].content or "", images, f"content[{last}]")
        messages[last] = replace(messages[last], content=text, images=pictures)
    return messages


def _images(tensor: Tensor) -> list[ChatImage]:
    """The `image` tensor's images: raw bytes when it came as binary data, else base64 (JSON
    has no bytes). Each is named `image[k]`."""
    if tensor.datatype != "BYTES":
        raise InvalidInput(f"input 'image' must be BYTES, got {tensor.datatype}")
    if "binary_data_size" in tensor.parameters:
        return [ChatImage(bytes(v), f"image[{k}]") for k, v in enumerate(tensor.values)]
    return [
        ChatImage(base64_image(v.decode("utf-8"), f"image[{k}]"), f"image[{k}]")
        for k, v in enumerate(tensor.values)
    ]


def chat_outputs(content: str, reasoning: str) -> list[Output]:
    """A chat reply's tensors: `role` and `content`, BYTES [1]; and `reasoning`, BYTES [1],
    what the model reasoned before its answer, only when there is some (a streamed delta's
    part of it, when streamed)."""
    outputs = [
        Output("role", "BYTES", [1], ["assistant"]),
        Output("content", "BYTES", [1], [content]),
    ]
    if reasoning:
        outputs.append(Output("reasoning", "BYTES", [1], [reasoning]))
    return outputs


def transcription_request(tensor: Tensor, params: dict) -> TranscriptionRequest:
    """The `audio` tensor's one file and the parameters (language, prompt, temperature, task)."""
    if tensor.datatype != "BYTES" or len(tensor.values) != 1:
        raise InvalidInput("input 'audio' must be BYTES holding one audio file", "audio")
    raw = bytes(tensor.values[0])
    if "binary_data_size" not in tensor.parameters:
        try:
            raw = base64.b64decode(raw, validate=True)
        except binascii.Error:
            raise InvalidInput("input 'audio' in JSON must be base64", "audio") from None
    fields = {k: params[k] for k in ("language", "prompt", "task") if params.get(k) is not None}
    try:
        temperature = float(params.get("temperature", 0.0))
    except (TypeError, ValueError):
        raise InvalidInput("parameter temperature must be a number", "temperature") from None
    return TranscriptionRequest(raw, temperature=temperature, **fields)


async def rerank_scores(handle: ModelHandle, tensors: dict[str, Tensor]) -> Output:
    """The `scores` output (FP32 [N]) of a rerank: `query` [1] against `documents` [N]."""
    missing = [name for name in ("query", "documents") if name not in tensors]
    if missing:
        raise InvalidInput(
            f"rerank takes inputs 'query' [1] and 'documents' [N]; missing {missing}"
        )
    query = tensors["query"].strings()
    if len(query) != 1:
        raise InvalidInput(f"input 'query' must hold one text, got {len(query)}")
    scores = await rerank(handle, query[0], tensors["documents"].strings())
    return Output("scores", "FP32", [len(scores.values)], scores.values)


def capability_for(handle: ModelHandle, names: set[str]) -> Capability:
    """Which capability a set of input names asks for, on this model."""
    can = handle.capabilities
    if {"role", "content"} <= names and Capability.CHAT in can:
        capability = Capability.CHAT
    elif "prompt" in names and Capability.IMAGE in can:
        capability = Capability.IMAGE
    elif "prompt" in names and Capability.COMPLETION in can:
        capability = Capability.COMPLETION
    elif "input" in names and Capability.EMBED in can:
        capability = Capability.EMBED
    elif names & {"query", "documents"} and Capability.RERANK in can:
        capability = Capability.RERANK
    elif "audio" in names and Capability.TRANSCRIBE in can:
        capability = Capability.TRANSCRIBE
    else:
        expected = "; or ".join(", ".join(t.name for t in CONTRACT[c][0]) for c in sorted(can))
        raise InvalidInput(
            f"model {handle.name!r} takes inputs: {expected}; got {sorted(names) or 'none'}"
        )
    takes = {t.name for t in CONTRACT[capability][0]}
    if capability is Capability.CHAT:
        takes.add(IMAGE_INPUT.name)  # a model without a projector refuses it by name
    extra = names - takes
    if extra:
        raise InvalidInput(
            f"unexpected input(s) {sorted(extra)} for {capability} on model {handle.name!r}"
        )
    return capability


class DataPlane:
    """Protocol-level OIP operations; the routes only translate HTTP to these calls."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def server_metadata(self) -> ServerMetadata:
        return ServerMetadata(name="localoip", version=version("localoip"), extensions=EXTENSIONS)

    def ready(self) -> bool:
        return self.registry.settled

    def model(self, name: str, model_version: str | None = None) -> ModelHandle:
        handle = self.registry.get(name)
        if model_version is not None and model_version != MODEL_VERSION:
            raise ModelNotFound(
                f"model {name!r} has no version {model_version!r}; versions: [{MODEL_VERSION!r}]"
            )
        return handle

    def model_metadata(self, name: str, model_version: str | None = None) -> ModelMetadata:
        handle = self.model(name, model_version)
        inputs: list[MetadataTensor] = []
        outputs: list[MetadataTensor] = []
        for capability in sorted(handle.capabilities):
            ins, outs = CONTRACT[capability]
            inputs += [t for t in ins if t.name not in {i.name for i in inputs}]
            outputs += [t for t in outs if t.name not in {o.name for o in outputs}]
        if Capability.CHAT in handle.capabilities and model_facts(handle).vision:
            inputs.append(IMAGE_INPUT)
        return ModelMetadata(
            name=handle.name,
            versions=[MODEL_VERSION],
            platform=handle.spec.runtime,
            inputs=inputs,
            outputs=outputs,
            parameters={
                "capabilities": sorted(handle.capabilities),
                "state": handle.state,
                "source": str(handle.spec.source),
                **facts_fields(handle),
            },
        )

    async def infer(
        self, name: str, model_version: str | None, tensors: dict[str, Tensor], params: dict
    ) -> tuple[list[Output], Truncated | None]:
        """The outputs of an infer request, and how its prompt was cut to fit the context
        (a chat's, or the first cut of a completion's prompts), if it was."""
        handle = self.model(name, model_version)
        capability = capability_for(handle, set(tensors))
        if capability is Capability.CHAT:
            chat = parameters.chat_request(chat_messages(tensors), params)
            result = await handle.generate(capability, chat)
            return chat_outputs(result.text, result.reasoning), result.truncated
        if capability is Capability.COMPLETION:
            prompts = tensors["prompt"].strings()
            sampling = parameters.sampling(params, capability)
            results = await asyncio.gather(
                *(handle.generate(capability, CompletionRequest(p, sampling)) for p in prompts)
            )
            cut = next((r.truncated for r in results if r.truncated is not None), None)
            return [Output("text", "BYTES", [len(results)], [r.text for r in results])], cut
        if capability is Capability.EMBED:
            texts = tensors["input"].strings()
            if not texts:
                raise InvalidInput("input 'input' is empty; give at least one text")
            result = await handle.embed(texts)
            vectors = np.asarray(result.vectors, dtype=np.float32)
            return [Output("embedding", "FP32", list(vectors.shape), vectors)], None
        if capability is Capability.RERANK:
            return [await rerank_scores(handle, tensors)], None
        if capability is Capability.TRANSCRIBE:
            speech = transcription_request(tensors["audio"], parameters.merged(params))
            audio_bytes(len(speech.audio), handle.spec.options, "audio")
            result = await handle.call(capability, lambda rt: rt.transcribe(speech))
            return [Output("text", "BYTES", [1], [result.text])], None
        prompts = tensors["prompt"].strings()
        if len(prompts) != 1:
            raise InvalidInput(f"input 'prompt' must hold one prompt, got {len(prompts)}")
        request = image_request(prompts[0], parameters.merged(params), handle.spec.options)
        images = await handle.call(capability, lambda rt: rt.generate_images(request))
        return [Output("image", "BYTES", [len(images)], [img.png for img in images])], None

    def relayed(self, name: str) -> ModelHandle | None:
        """The model when its OIP requests are relayed to its upstream (`tensors`), else None.
        Raises ModelNotFound for an unknown model."""
        handle = self.registry.get(name)
        return handle if Capability.TENSORS in handle.capabilities else None

    async def relay(
        self, handle: ModelHandle, model_version: str | None, body: bytes, headers: dict[str, str]
    ) -> tuple[bytes, dict[str, str]]:
        """An infer request relayed (at `model_version`): the answer's body and headers."""
        return await handle.call_here(
            Capability.TENSORS, lambda rt: rt.relay(body, headers, model_version)
        )

    def relay_stream(
        self, handle: ModelHandle, model_version: str | None, body: bytes, headers: dict[str, str]
    ) -> AsyncIterator[str]:
        """An infer_stream request relayed: the upstream's events' data, as they come."""
        return handle.items_here(
            Capability.TENSORS, lambda rt: rt.relay_stream(body, headers, model_version)
        )

    async def relayed_metadata(
        self, handle: ModelHandle, model_version: str | None
    ) -> dict[str, Any]:
        """The upstream's model metadata (tensors, versions, platform), under this name."""
        answer = await handle.call_here(Capability.TENSORS, lambda rt: rt.metadata(model_version))
        return answer | {"name": handle.name}

    async def infer_stream(
        self,
        name: str,
        model_version: str | None,
        tensors: dict[str, Tensor],
        params: dict,
        watch: Watch,
    ) -> AsyncIterator[list[Output]]:
        """Chat and single-prompt completion stream one response per delta; the rest answer once.
        `watch` learns how the prompt was cut, if it was (for the headers).

        Everything is validated before this returns, so errors still get a status code.
        """
        handle = self.model(name, model_version)
        capability = capability_for(handle, set(tensors))
        if capability is Capability.CHAT:
            chat = parameters.chat_request(chat_messages(tensors), params)
            handle.require(capability)
            deltas = watch.watched(handle.generate_stream(capability, chat))
            return (chat_outputs(d.text, d.reasoning) async for d in deltas)
        if capability is Capability.COMPLETION and len(prompts := tensors["prompt"].strings()) == 1:
            completion = CompletionRequest(prompts[0], parameters.sampling(params, capability))
            handle.require(capability)
            deltas = watch.watched(handle.generate_stream(capability, completion))
            return ([Output("text", "BYTES", [1], [d.text])] async for d in deltas)
        outputs, watch.truncated = await self.infer(name, model_version, tensors, params)

        async def once() -> AsyncIterator[list[Output]]:
            yield outputs

        return once()

    async def generate(
        self, name: str, model_version: str | None, request: GenerateRequest
    ) -> tuple[GenerateResponse, Truncated | None]:
        """The generate extension's answer, and how its prompt was cut, if it was."""
        handle = self.model(name, model_version)
        completion = CompletionRequest(
            request.text_input, parameters.sampling(request.parameters, Capability.COMPLETION)
        )
        result = await handle.generate(Capability.COMPLETION, completion)
        answer = GenerateResponse(
            model_name=handle.name,
            model_version=MODEL_VERSION,
            text_output=result.text,
            details={
                "finish_reason": FINISH_REASONS.get(result.finish_reason, "eos_token"),
                "logprobs": [],
                "prompt_tokens": result.prompt_tokens,
                "completion_tokens": result.completion_tokens,
            },
        )
        return answer, result.truncated

    def generate_stream(
        self, name: str, model_version: str | None, request: GenerateRequest
    ) -> AsyncIterator[TextDelta]:
        """Deltas for a streamed generation; validation errors raise before the first one."""
        handle = self.model(name, model_version)
        completion = CompletionRequest(
            request.text_input, parameters.sampling(request.parameters, Capability.COMPLETION)
        )
        handle.require(Capability.COMPLETION)
        return handle.generate_stream(Capability.COMPLETION, completion)

    def repository_index(self, ready_only: bool) -> list[RepositoryModel]:
        # The repository spec has no UNLOADED state; like Triton, report UNAVAILABLE "unloaded".
        return [
            RepositoryModel(
                name=h.name,
                version=MODEL_VERSION,
                state="UNAVAILABLE" if h.state is ModelState.UNLOADED else h.state,
                reason=h.reason or ("unloaded" if h.state is ModelState.UNLOADED else ""),
                runner=h.runner,
                download=download_status(h),
                **facts_fields(h),
            )
            for h in self.registry.models.values()
            if not ready_only or h.state is ModelState.READY
        ]
