"""Remote runtime: chat, completions, embeddings and images served by an OpenAI-compatible server.

The model's `source` is the upstream's base URL (e.g. `http://host:8000/v1`); requests go
there for the upstream model `options.model`, with `Authorization: Bearer $api_key_env`.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np
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
    TokenLogprob,
    ToolCall,
    UpstreamError,
)
from localoip.runtimes.options import OpenAIOptions
from localoip.runtimes.remote.common import RemoteRuntime
from localoip.runtimes.wire.openai_json import (
    chat_logprobs,
    chat_result,
    completion_fields,
    completion_logprobs,
    completion_result,
    sampling_fields,
)
from localoip.runtimes.wire.sse import sse_data

PROBE_TIMEOUT = 30.0
"""Seconds the load-time reachability check may take, at most."""

ChoiceReader = Callable[[dict[str, Any]], tuple[str, tuple[TokenLogprob, ...] | None]]


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

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        with self._upstream():
            response = self.client.post(path, json=body)
            if not response.is_success:
                raise _error(response)
            return response.json()

    def _stream(self, path: str, body: dict[str, Any], read: ChoiceReader) -> Iterator[TextDelta]:
        """Stream the upstream's SSE as deltas; the last carries finish_reason and usage.

        Tool calls arrive in pieces, so they are assembled and sent on the last delta.
        """
        body = {**body, "stream": True, "stream_options": {"include_usage": True}}
        finish: str | None = None
        last: tuple[str, tuple[TokenLogprob, ...] | None] = ("", None)
        usage: tuple[int, int] | None = None
        calls: dict[int, dict[str, str]] = {}
        with self._upstream(), self.client.stream("POST", path, json=body) as response:
            if not response.is_success:
                response.read()
                raise _error(response)
            for data in sse_data(response.iter_lines()):
                if data == "[DONE]":
                    break
                frame = json.loads(data)
                if "error" in frame:
                    raise _upstream_error(frame["error"], 502, data)
                if frame.get("usage"):
                    usage = (frame["usage"]["prompt_tokens"], frame["usage"]["completion_tokens"])
                for choice in frame.get("choices") or ():
                    for piece in (choice.get("delta") or {}).get("tool_calls") or ():
                        call = calls.setdefault(
                            piece.get("index", 0), {"id": "", "name": "", "arguments": ""}
                        )
                        function = piece.get("function") or {}
                        call["id"] = piece.get("id") or call["id"]
                        call["name"] += function.get("name") or ""
                        call["arguments"] += function.get("arguments") or ""
                    text, logprobs = read(choice)
                    if choice.get("finish_reason"):
                        finish, last = choice["finish_reason"], (text, logprobs)
                    elif text or logprobs:
                        yield TextDelta(text, logprobs=logprobs)
        if finish is None:
            raise UpstreamError(
                f"upstream {self.base} ended the stream without a finish_reason",
                502,
                code="upstream_bad_response",
            )
        tool_calls = tuple(
            ToolCall(c["id"], c["name"], c["arguments"]) for _, c in sorted(calls.items())
        )
        yield TextDelta(last[0], finish, tool_calls, last[1], usage)

    # -- chat ---------------------------------------------------------------------------------

    def chat(self, request: ChatRequest) -> TextResult:
        out = self._post("/chat/completions", _chat_body(self.model, request))
        with self._upstream():
            return chat_result(out)

    def chat_stream(self, request: ChatRequest) -> Iterator[TextDelta]:
        yield from self._stream(
            "/chat/completions",
            _chat_body(self.model, request),
            lambda c: (
                (c.get("delta") or {}).get("content") or "",
                chat_logprobs(c.get("logprobs")),
            ),
        )

    # -- completion ---------------------------------------------------------------------------

    def _completion_body(self, request: CompletionRequest) -> dict[str, Any]:
        return {"model": self.model, **completion_fields(request), **_sampling(request.sampling)}

    def complete(self, request: CompletionRequest) -> TextResult:
        out = self._post("/completions", self._completion_body(request))
        with self._upstream():
            return completion_result(out)

    def complete_stream(self, request: CompletionRequest) -> Iterator[TextDelta]:
        yield from self._stream(
            "/completions",
            self._completion_body(request),
            lambda c: (c.get("text") or "", completion_logprobs(c.get("logprobs"))),
        )

    # -- embeddings and images ----------------------------------------------------------------

    def embed(self, texts: list[str]) -> Embeddings:
        body = {"model": self.model, "input": texts, "encoding_format": "float"}
        out = self._post("/embeddings", body)
        with self._upstream():
            rows = sorted(out["data"], key=lambda d: d["index"])
            total = (out.get("usage") or {}).get("prompt_tokens", 0)
            return Embeddings(
                vectors=np.asarray([r["embedding"] for r in rows], dtype=np.float32),
                tokens=(total,) + (0,) * (len(rows) - 1),
            )

    def generate_images(
        self, request: ImageRequest, on_step: StepCallback | None = None
    ) -> list[GeneratedImage]:
        """Images as PNG; the upstream reports no progress, so on_step is never called.

        Seeds are the upstream's when it lists them (as this server does), else the
        requested seed + i, else -1 (unknown).
        """
        out = self._post("/images/generations", _image_body(self.model, request))
        with self._upstream():
            seeds = out.get("seed")
            if not isinstance(seeds, list):
                seeds = [-1 if request.seed is None else request.seed + i for i in range(request.n)]
            return [
                GeneratedImage(base64.b64decode(item["b64_json"]), int(seed))
                for item, seed in zip(out["data"], seeds, strict=True)
            ]


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
    return body


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


def _message(m: ChatMessage) -> dict[str, Any]:
    out: dict[str, Any] = {"role": m.role, "content": m.content}
    if m.name is not None:
        out["name"] = m.name
    if m.tool_calls:
        out["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in m.tool_calls
        ]
    if m.tool_call_id is not None:
        out["tool_call_id"] = m.tool_call_id
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
        return [str(m["id"]) for m in listing.json()["data"]]
    except (ValueError, KeyError, TypeError):
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
