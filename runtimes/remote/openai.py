"""Remote runtime: chat, completions, embeddings, images and transcriptions served by an
OpenAI-compatible server.

The model's `source` is the upstream's base URL (e.g. `http://host:8000/v1`); requests go
there for the upstream model `options.model`, with `Authorization: Bearer $api_key_env`.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import msgspec
from localoip.runtimes.capabilities import (
    ChatMessage,
    ChatRequest,
    CompletionRequest,
    Embeddings,
    GeneratedImage,
    ImageRequest,
    InputError,
    Sampling,
    StepCallback,
    TextDelta,
    TextResult,
    UpstreamError,
)
from localoip.runtimes.folding import Fold
from localoip.runtimes.options import OpenAIOptions
from localoip.runtimes.remote.common import RemoteRuntime
from localoip.runtimes.transcripts import Transcription, TranscriptionRequest, TranscriptPart
from localoip.runtimes.wire.openai import audio, chat, completions, objects
from localoip.runtimes.wire.openai.requests import (
    completion_fields,
    content_parts,
    sampling_fields,
)
from localoip.runtimes.wire.sse import sse_data

PROBE_TIMEOUT = 30.0
"""Seconds the load-time reachability check may take, at most."""

A = TypeVar("A")
Chunk = TypeVar("Chunk", chat.ChatChunk, completions.CompletionChunk)


class OpenAIRemoteRuntime(RemoteRuntime):
    """Forwards each call to the upstream server; holds only an HTTP client."""

    options: OpenAIOptions

    def _probe(self, client: httpx.Client) -> None:
        """GET /models/{model}; servers without that route (vLLM, llama-server) list /models."""
        where = f"{self.base}/models/{self.model}"
        try:
            response = client.get(f"/models/{quote(self.model, safe='')}", timeout=PROBE_TIMEOUT)
            listing = (
                client.get("/models", timeout=PROBE_TIMEOUT)
                if response.status_code in (404, 405)
                else None
            )
        except httpx.HTTPError as exc:
            raise ConnectionError(
                f"upstream {where} is unreachable: {type(exc).__name__}: {exc}"
            ) from None
        if listing is not None and listing.is_success:
            ids = _model_ids(listing)
            if self.model in ids:
                return
            raise LookupError(
                f"upstream {self.base} does not serve model {self.model!r}; "
                f"it serves: {', '.join(ids) or 'nothing'}"
            )
        if not response.is_success:
            raise ConnectionError(
                f"upstream {where} answered {response.status_code}: {_error(response)}"
            )

    # -- HTTP ---------------------------------------------------------------------------------

    def _post(self, path: str, body: dict[str, Any], answer: type[A]) -> A:
        """POST a JSON body; the upstream's answer, read as `answer`."""
        with self._upstream():
            response = self.client.post(path, json=body)
            if not response.is_success:
                raise _error(response)
            return msgspec.json.decode(response.content, type=answer)

    def _stream(
        self,
        path: str,
        body: dict[str, Any],
        chunk: type[Chunk],
        read: Callable[[Any], TextDelta],
    ) -> Iterator[TextDelta]:
        """Stream the upstream's SSE chunks, each choice `read` as a delta; the last delta
        carries finish_reason and usage.

        Tool calls arrive in pieces, so they are put together and sent whole on the last delta.
        """
        body = {**body, "stream": True, "stream_options": {"include_usage": True}}
        fold, last = Fold(), TextDelta("")
        with self._upstream(), self.client.stream("POST", path, json=body) as response:
            if not response.is_success:
                response.read()
                raise _error(response)
            for data in sse_data(response.iter_lines()):
                if data == "[DONE]":
                    break
                frame = msgspec.json.decode(data)
                if isinstance(frame, dict) and "error" in frame:
                    raise _upstream_error(frame["error"], 502, data)
                read_chunk = msgspec.convert(frame, chunk)
                used = read_chunk.usage
                if used:
                    counts = (used.prompt_tokens, used.completion_tokens)
                    fold.add(TextDelta("", usage=counts, reasoning_tokens=used.reasoning_tokens))
                for choice in read_chunk.choices:
                    delta = fold.add(read(choice))
                    if delta.finish_reason:
                        last = delta
                    elif delta.text or delta.reasoning or delta.logprobs:
                        yield replace(delta, call_pieces=())
        if fold.finish_reason is None:
            raise UpstreamError(
                f"upstream {self.base} ended the stream without a finish_reason",
                502,
                code="upstream_bad_response",
            )
        yield TextDelta(
            last.text,
            fold.finish_reason,
            fold.pieced_calls(),
            last.logprobs,
            fold.usage,
            reasoning=last.reasoning,
            reasoning_tokens=fold.reasoning_tokens,
        )

    # -- chat ---------------------------------------------------------------------------------

    def chat(self, request: ChatRequest) -> TextResult:
        out = self._post("/chat/completions", _chat_body(self.model, request), chat.ChatCompletion)
        with self._upstream():
            return chat.chat_result(out)

    def chat_stream(self, request: ChatRequest) -> Iterator[TextDelta]:
        yield from self._stream(
            "/chat/completions", _chat_body(self.model, request), chat.ChatChunk, chat.chunk_delta
        )

    # -- completion ---------------------------------------------------------------------------

    def _completion_body(self, request: CompletionRequest) -> dict[str, Any]:
        return {"model": self.model, **completion_fields(request), **_sampling(request.sampling)}

    def complete(self, request: CompletionRequest) -> TextResult:
        out = self._post("/completions", self._completion_body(request), completions.Completion)
        with self._upstream():
            return completions.completion_result(out)

    def complete_stream(self, request: CompletionRequest) -> Iterator[TextDelta]:
        yield from self._stream(
            "/completions",
            self._completion_body(request),
            completions.CompletionChunk,
            completions.chunk_delta,
        )

    # -- embeddings and images ----------------------------------------------------------------

    def embed(self, texts: list[str]) -> Embeddings:
        body = {"model": self.model, "input": texts, "encoding_format": "float"}
        out = self._post("/embeddings", body, objects.EmbeddingList)
        with self._upstream():
            vectors = objects.vectors(out)
        total = out.usage.prompt_tokens if out.usage else 0
        return Embeddings(vectors=vectors, tokens=(total,) + (0,) * (len(vectors) - 1))

    def generate_images(
        self, request: ImageRequest, on_step: StepCallback | None = None
    ) -> list[GeneratedImage]:
        """Images as PNG; the upstream reports no progress, so on_step is never called.

        Seeds are the upstream's when it lists them (as this server does), else the
        requested seed + i, else -1 (unknown).
        """
        out = self._post(
            "/images/generations", _image_body(self.model, request), objects.ImagesResponse
        )
        seeds = out.seed
        if not isinstance(seeds, list):
            seeds = [-1 if request.seed is None else request.seed + i for i in range(request.n)]
        with self._upstream():
            if any(not item.b64_json for item in out.data):
                raise ValueError("an image came without its b64_json")
            return [
                GeneratedImage(base64.b64decode(item.b64_json), seed)
                for item, seed in zip(out.data, seeds, strict=True)
            ]

    # -- speech -------------------------------------------------------------------------------

    def transcribe(self, request: TranscriptionRequest) -> Transcription:
        """The upstream's verbose_json, read back: its segments (and words when asked)."""
        translate = request.task == "translate"
        form = _audio_form(self.model, request)
        with self._upstream():
            response = self.client.post(
                "/audio/translations" if translate else "/audio/transcriptions",
                data=form,
                files={"file": ("audio", request.audio)},
            )
            if not response.is_success:
                raise _error(response)
            return audio.from_verbose(response.content)

    def transcribe_stream(self, request: TranscriptionRequest) -> Iterator[TranscriptPart]:
        """The whole transcription, asked for once, as parts: verbose_json has the segments
        that an upstream's stream (text deltas alone) would not."""
        result = self.transcribe(request)
        yield TranscriptPart(language=result.language, duration=result.duration)
        yield from (TranscriptPart(segment=s) for s in result.segments)


# -- neutral requests -> OpenAI JSON ----------------------------------------------------------


def _chat_body(model: str, request: ChatRequest) -> dict[str, Any]:
    """The upstream's chat completion body for a neutral chat request."""
    body: dict[str, Any] = {
        "model": model,
        "messages": [_message(m) for m in request.messages],
        **_sampling(request.sampling),
    }
    if request.tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    "description": t.description,
                    **({"parameters": t.parameters} if t.parameters is not None else {}),
                    **({"strict": True} if t.strict else {}),
                },
            }
            for t in request.tools
        ]
        body["tool_choice"] = (
            request.tool_choice
            if request.tool_choice in ("auto", "none", "required")
            else {"type": "function", "function": {"name": request.tool_choice}}
        )
    if request.json_schema is not None:
        body["response_format"] = (
            {
                "type": "json_schema",
                "json_schema": {"name": "reply", "schema": request.json_schema},
            }
            if request.json_schema
            else {"type": "json_object"}
        )
    if request.logprobs is not None:
        body |= {"logprobs": True, "top_logprobs": request.logprobs}
    if request.continue_final:  # vLLM's fields, which localoip's /v1 takes too
        body |= {"continue_final_message": True, "add_generation_prompt": False}
    if request.tools and not request.parallel_tool_calls:
        body["parallel_tool_calls"] = False  # OpenAI takes it only with tools
    reasoning = {
        "reasoning_effort": request.reasoning_effort,
        "chat_template_kwargs": request.template_kwargs,
        "max_reasoning_tokens": request.max_reasoning_tokens,  # localoip's own: only if given
    }
    return body | {k: v for k, v in reasoning.items() if v is not None}


def _image_body(model: str, request: ImageRequest) -> dict[str, Any]:
    """The upstream's image generation body, asking for base64 PNGs; InputError for a width
    without a height or the reverse."""
    body: dict[str, Any] = {
        "model": model,
        "prompt": request.prompt,
        "n": request.n,
        "response_format": "b64_json",
    }
    if (request.width is None) != (request.height is None):
        raise InputError("a remote image model needs both width and height, or neither", "size")
    if request.width is not None:
        body["size"] = f"{request.width}x{request.height}"
    extra = {
        "negative_prompt": request.negative_prompt,
        "steps": request.steps,
        "seed": request.seed,
        "guidance_scale": request.guidance_scale,
    }
    return body | {k: v for k, v in extra.items() if v is not None}


def _audio_form(model: str, request: TranscriptionRequest) -> dict[str, Any]:
    """The multipart fields of an upstream transcription (a translation takes no language
    and no granularities)."""
    form: dict[str, Any] = {
        "model": model,
        "response_format": "verbose_json",
        "temperature": str(request.temperature),
    }
    if request.prompt:
        form["prompt"] = request.prompt
    if request.task == "transcribe":
        if request.language:
            form["language"] = request.language
        form["timestamp_granularities[]"] = ["segment", "word"] if request.words else ["segment"]
    return form


def _message(m: ChatMessage) -> dict[str, Any]:
    out: dict[str, Any] = {"role": m.role, "content": content_parts(m)}
    if m.name is not None:
        out["name"] = m.name
    if m.tool_calls:
        out["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in m.tool_calls
        ]
    if m.tool_call_id is not None:
        out["tool_call_id"] = m.tool_call_id
    if m.reasoning:
        out["reasoning_content"] = m.reasoning
    return out


def _sampling(sampling: Sampling) -> dict[str, Any]:
    body = sampling_fields(sampling)
    if sampling.logit_bias:
        body["logit_bias"] = {str(token): bias for token, bias in sampling.logit_bias.items()}
    return body


# -- OpenAI JSON -> neutral results -----------------------------------------------------------


def _model_ids(listing: httpx.Response) -> list[str]:
    """The model ids in a GET /models answer; none when it cannot be read."""
    try:
        return [m.id for m in msgspec.json.decode(listing.content, type=objects.ModelList).data]
    except msgspec.DecodeError:
        return []


def _upstream_error(error: Any, status: int, raw: str) -> UpstreamError:
    """An OpenAI `error` value (an object, or a bare message) as an UpstreamError."""
    if isinstance(error, dict):
        param, code = error.get("param"), error.get("code")
        return UpstreamError(
            str(error.get("message") or raw),
            status,
            str(error.get("type") or "upstream_error"),
            None if param is None else str(param),
            None if code is None else str(code),
        )
    return UpstreamError(str(error) if error else raw, status)


def _error(response: httpx.Response) -> UpstreamError:
    """The upstream's error answer, read from its OpenAI error body or else its raw text."""
    raw = response.text.strip() or response.reason_phrase
    if response.status_code in (401, 403):
        # The upstream refused this server's key: a gateway fault, not the client's.
        return UpstreamError(
            f"the upstream refused this server's credentials ({response.status_code}): {raw}; "
            "check the model's options.api_key_env",
            502,
            code="upstream_auth_failed",
        )
    try:
        error = json.loads(raw).get("error")
    except (ValueError, AttributeError):
        error = None
    return _upstream_error(error, response.status_code, raw)
