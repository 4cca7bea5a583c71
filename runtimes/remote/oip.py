"""Remote runtime: a model on an OIP (KServe v2) server, relayed as tensors or served as chat,
completion, embeddings and images.

The model's `source` is the upstream's base URL (e.g. `http://host:8080`): KServe, Triton,
MLServer or another localoip. At load it reads what the upstream offers (negotiate.py):
binary tensors or JSON, generate or not, the model's tensors and versions. OIP requests
are relayed as they are (relay.py, on the event loop), re-encoded as JSON when the upstream
lacks the binary extension. The other protocols' calls go to /v2/models/{options.model}/infer
as Seldon Core 2's tensors (chat role/content/type -> content, completion prompt -> text,
embeddings input -> embedding, images prompt -> image), encoded by the one tensor codec.
Streams use the upstream's generate_stream (when it lists `generate`) or infer_stream.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import numpy as np
from localoip.runtimes.capabilities import (
    Capability,
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
    refuse_images,
)
from localoip.runtimes.options import OipOptions
from localoip.runtimes.remote.common import upstream_error
from localoip.runtimes.remote.negotiate import BINARY, GENERATE, Upstream, read_upstream
from localoip.runtimes.remote.relay import OipRelay
from localoip.runtimes.wire.oip import (
    HEADER_LENGTH,
    Output,
    Tensor,
    chat_inputs,
    decode_response,
    encode_request,
)
from localoip.runtimes.wire.openai.requests import sampling_fields
from localoip.runtimes.wire.sse import sse_data

NOT_SUPPORTED = {404, 405, 501}
"""Statuses with which an upstream says it lacks a streaming route."""

PNG = b"\x89PNG\r\n\x1a\n"


class OipRemoteRuntime(OipRelay):
    """Forwards each call to the upstream OIP server; holds only its HTTP clients. OIP
    requests are relayed (OipRelay, relay.py); the other protocols' calls become tensors."""

    options: OipOptions

    def __init__(self, path: str, options: OipOptions) -> None:
        super().__init__(path, options)
        self._no_stream: set[str] = set()  # streaming routes the upstream answered 404 to
        self.upstream = Upstream(frozenset(), frozenset(), frozenset(), ())
        self.offers: frozenset[Capability] | None = None  # found, when not configured

    def _probe(self, client: httpx.Client) -> None:
        """Read what the upstream offers (negotiate.py) and choose binary or JSON; refuse,
        saying why, what it cannot serve: a configured capability its tensors do not fit,
        or `binary = true` where it lists no binary tensor extension."""
        upstream = read_upstream(client, self.base, self.model, self._path(""))
        configured = self.options.serves is not None
        wanted = self.options.capabilities() if configured else upstream.offers()
        refusal = upstream.refusal(wanted)
        if refusal:
            raise LookupError(f"upstream model {self.model!r} at {self.base} {refusal}")
        if self.options.binary and BINARY not in upstream.extensions:
            raise LookupError(
                f"upstream {self.base} lists no {BINARY} extension in /v2 (it lists "
                f"{sorted(upstream.extensions)}), so it cannot take binary = true; "
                "set binary = false, or leave it unset to choose by what it lists"
            )
        self.upstream = upstream
        self.binary = BINARY in upstream.extensions if self.options.binary is None else True
        self.offers = None if configured else wanted

    # -- HTTP ---------------------------------------------------------------------------------

    def _infer(self, inputs: list[Output], parameters: dict[str, Any]) -> dict[str, Tensor]:
        body, headers = encode_request(inputs, parameters, self.binary)
        with self._upstream():
            response = self.client.post(self._path("/infer"), content=body, headers=headers)
            if not response.is_success:
                raise upstream_error(response)
            return decode_response(response.content, response.headers.get(HEADER_LENGTH))

    def _stream(
        self,
        route: str,
        body: bytes,
        read: Callable[[str], TextDelta],
        once: Callable[[], TextResult],
    ) -> Iterator[TextDelta]:
        """Relay the upstream's SSE events as deltas, unbuffered; `read` gives an event's
        delta. Without the route upstream, `once()` answers in one delta."""
        finished = False
        if route not in self._no_stream:
            headers = {"content-type": "application/json", "accept": "text/event-stream"}
            with (
                self._upstream(),
                self.client.stream("POST", self._path(route), content=body, headers=headers) as r,
            ):
                if r.status_code in NOT_SUPPORTED:
                    self._no_stream.add(route)
                elif not r.is_success:
                    r.read()
                    raise upstream_error(r)
                else:
                    for data in sse_data(r.iter_lines()):
                        frame = json.loads(data)
                        if isinstance(frame, dict) and "error" in frame:
                            raise UpstreamError(str(frame["error"]), 502, code="upstream_error")
                        delta = read(data)
                        finished = delta.finish_reason is not None
                        yield delta
                    if not finished:
                        yield TextDelta("", "stop")
                    return
        result = once()
        yield TextDelta(result.text, result.finish_reason, reasoning=result.reasoning)

    # -- chat ---------------------------------------------------------------------------------

    def chat(self, request: ChatRequest) -> TextResult:
        refuse_images(request.messages, "OIP chat tensors carry text only")
        out = self._infer(_chat_tensors(request), _chat_parameters(request))
        with self._upstream():
            reply = _reply(out)
            return TextResult(reply.text, "stop", 0, 0, reasoning=reply.reasoning)

    def chat_stream(self, request: ChatRequest) -> Iterator[TextDelta]:
        refuse_images(request.messages, "OIP chat tensors carry text only")
        body, _ = encode_request(_chat_tensors(request), _chat_parameters(request))

        def read(data: str) -> TextDelta:
            return _reply(decode_response(data.encode()))

        yield from self._stream("/infer_stream", body, read, lambda: self.chat(request))

    # -- completion ---------------------------------------------------------------------------

    def complete(self, request: CompletionRequest) -> TextResult:
        prompt = _prompt(request)
        out = self._infer([Output("prompt", "BYTES", [1], [prompt])], _parameters(request.sampling))
        with self._upstream():
            return TextResult("".join(out["text"].strings()), "stop", 0, 0)

    def complete_stream(self, request: CompletionRequest) -> Iterator[TextDelta]:
        """A streamed completion: the upstream's generate_stream when it lists the generate
        extension (one event per token, the last with finish_reason), else its infer_stream
        with the `prompt` tensor (one `text` per event)."""
        prompt, parameters = _prompt(request), _parameters(request.sampling)
        if GENERATE in self.upstream.extensions:
            body = json.dumps({"text_input": prompt, "parameters": parameters}).encode()
            route, read = "/generate_stream", _generated
        else:
            body, _ = encode_request([Output("prompt", "BYTES", [1], [prompt])], parameters)
            route, read = "/infer_stream", _streamed_text
        yield from self._stream(route, body, read, lambda: self.complete(request))

    # -- embeddings and images ----------------------------------------------------------------

    def embed(self, texts: list[str]) -> Embeddings:
        out = self._infer([Output("input", "BYTES", [len(texts)], texts)], {})
        with self._upstream():
            embedding = out["embedding"]
            vectors = np.asarray(embedding.values, dtype=np.float32).reshape(embedding.shape)
            if vectors.ndim != 2 or len(vectors) != len(texts):
                raise ValueError(f"embedding has shape {embedding.shape} for {len(texts)} texts")
            return Embeddings(vectors=vectors, tokens=(0,) * len(vectors))

    def generate_images(
        self, request: ImageRequest, on_step: StepCallback | None = None
    ) -> list[GeneratedImage]:
        """Images as PNG; the upstream reports no progress, so on_step is never called.

        The upstream does not report seeds: they are the requested seed + i, else -1.
        """
        prompt = Output("prompt", "BYTES", [1], [request.prompt])
        out = self._infer([prompt], _image_parameters(request))
        with self._upstream():
            images = [_png(v) for v in out["image"].values]
        return [
            GeneratedImage(png, -1 if request.seed is None else request.seed + i)
            for i, png in enumerate(images)
        ]


def _chat_tensors(request: ChatRequest) -> list[Output]:
    """A chat's role and content tensors; InputError for what they cannot carry."""
    for field, given in (
        ("tools", request.tools and request.tool_choice != "none"),
        ("response_format", request.json_schema is not None),
        ("logprobs", request.logprobs is not None),
        ("messages", any(m.tool_calls for m in request.messages)),
        ("continue_final_message", request.continue_final),
    ):
        if given:
            raise InputError(
                f"model served over OIP cannot take {field}: "
                "its chat tensors carry only role and content",
                field,
            )
    return chat_inputs(request.messages)


def _reply(out: dict[str, Tensor]) -> TextDelta:
    """A chat answer's tensors as a delta: `content`, and `reasoning` when the upstream sent
    it (as this server does for a model that reasoned)."""
    reasoning = "".join(out["reasoning"].strings()) if "reasoning" in out else ""
    return TextDelta("".join(out["content"].strings()), reasoning=reasoning)


def _chat_parameters(request: ChatRequest) -> dict[str, Any]:
    """A chat's infer parameters: its sampling, and the reasoning controls it was given, by
    the names this server's OIP parameters take."""
    controls = {
        "reasoning_effort": request.reasoning_effort,
        "chat_template_kwargs": request.template_kwargs,
        "max_reasoning_tokens": request.max_reasoning_tokens,
    }
    return _parameters(request.sampling) | {k: v for k, v in controls.items() if v is not None}


def _prompt(request: CompletionRequest) -> str:
    """A completion's prompt; InputError for the fields an OIP upstream cannot take."""
    for field, given in (
        ("suffix", request.suffix is not None),
        ("echo", request.echo),
        ("logprobs", request.logprobs is not None),
    ):
        if given:
            raise InputError(f"model served over OIP cannot take {field}", field)
    if not isinstance(request.prompt, str):
        raise InputError("model served over OIP cannot take a prompt of token ids", "prompt")
    return request.prompt


def _image_parameters(request: ImageRequest) -> dict[str, Any]:
    """An image request's settings as infer parameters, those that were given."""
    settings = {
        "negative_prompt": request.negative_prompt,
        "n": request.n,
        "width": request.width,
        "height": request.height,
        "steps": request.steps,
        "guidance_scale": request.guidance_scale,
        "seed": request.seed,
    }
    return {k: v for k, v in settings.items() if v is not None}


def _parameters(sampling: Sampling) -> dict[str, Any]:
    if sampling.logit_bias:
        raise InputError("model served over OIP cannot take logit_bias", "logit_bias")
    return sampling_fields(sampling)


def _png(value: bytes) -> bytes:
    """An image element: raw PNG (binary outputs) or base64 text (JSON outputs)."""
    return value if value.startswith(PNG) else base64.b64decode(value, validate=True)


def _generated(data: str) -> TextDelta:
    """A generate_stream event as a delta."""
    event = json.loads(data)
    finish = event.get("finish_reason")
    reason = None if finish is None else "length" if finish == "length" else "stop"
    return TextDelta(str(event.get("text_output") or ""), reason)


def _streamed_text(data: str) -> TextDelta:
    """An infer_stream event's `text` tensor as a delta."""
    return TextDelta("".join(decode_response(data.encode())["text"].strings()))
