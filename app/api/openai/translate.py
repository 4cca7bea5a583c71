"""OpenAI bodies <-> runtime requests and results: parsing, validation and response shapes."""

from __future__ import annotations

import base64
import re
import time
import uuid
from dataclasses import replace
from typing import Any, TypeVar

import msgspec
import numpy as np
from localoip.app.core.errors import InvalidInput
from localoip.runtimes import capabilities as base
from localoip.runtimes.wire import openai_requests as types

S = TypeVar("S")
WHERE = re.compile(r" - at `(?:key` in `)?\$\.?([^`]*)`$")  # a bad key names its dict
MISSING = re.compile(r"Object missing required field `([^`]+)`")


def decode(body: bytes, into: type[S]) -> S:
    """Parse a JSON body; validation errors name the offending field as `param`."""
    if not body.strip():
        raise InvalidInput("the request body is empty; expected a JSON object", None)
    try:
        return msgspec.json.decode(body, type=into)
    except msgspec.ValidationError as exc:
        message = str(exc)
        where = WHERE.search(message)
        missing = MISSING.search(message)
        param = where[1] if where else None
        if missing:
            param = f"{param}.{missing[1]}" if param else missing[1]
        raise InvalidInput(message, param) from None
    except msgspec.DecodeError as exc:
        raise InvalidInput(f"the request body is not valid JSON: {exc}") from None


def sampling(req: types.Sampling, max_tokens: int | None) -> base.Sampling:
    stop = (req.stop,) if isinstance(req.stop, str) else tuple(req.stop or ())
    bias = None
    if req.logit_bias:
        try:
            bias = {int(token): value for token, value in req.logit_bias.items()}
        except ValueError:
            raise InvalidInput(
                "logit_bias keys must be token ids (integers)", "logit_bias"
            ) from None
    return base.Sampling(
        max_tokens=max_tokens,
        temperature=req.temperature,
        top_p=req.top_p,
        top_k=req.top_k,
        stop=stop,
        seed=req.seed,
        presence_penalty=req.presence_penalty,
        frequency_penalty=req.frequency_penalty,
        repeat_penalty=req.repeat_penalty,
        logit_bias=bias,
    )


def per_choice(request: S, index: int) -> S:
    """The request for choice `index` of n: a given seed advances, so choices differ."""
    seed = request.sampling.seed
    if seed is None or index == 0:
        return request
    return replace(request, sampling=replace(request.sampling, seed=seed + index))


def _text(content: str | list[types.ContentPart] | None, where: str) -> str | None:
    if content is None or isinstance(content, str):
        return content
    texts = []
    for i, part in enumerate(content):
        if part.type != "text" or part.text is None:
            raise InvalidInput(
                f"content part type {part.type!r} is not supported; send text parts",
                f"{where}.content[{i}].type",
            )
        texts.append(part.text)
    return "".join(texts)


def chat_request(req: types.ChatCompletionRequest) -> base.ChatRequest:
    messages = []
    for i, m in enumerate(req.messages):
        calls = tuple(
            base.ToolCall(c.id, c.function.name, c.function.arguments) for c in m.tool_calls or ()
        )
        messages.append(
            base.ChatMessage(
                m.role, _text(m.content, f"messages[{i}]"), m.name, calls, m.tool_call_id
            )
        )
    tools = tuple(
        base.Tool(t.function.name, t.function.description, t.function.parameters)
        for t in req.tools or ()
    )
    choice = req.tool_choice
    if isinstance(choice, types.NamedToolChoice):
        choice = choice.function.name
        if choice not in {t.name for t in tools}:
            raise InvalidInput(
                f"tool_choice names {choice!r}, which is not in tools", "tool_choice"
            )
    elif choice == "required" and not tools:
        raise InvalidInput("tool_choice 'required' needs at least one tool", "tool_choice")
    schema = None
    if req.response_format is not None and req.response_format.type == "json_object":
        schema = {}
    elif req.response_format is not None and req.response_format.type == "json_schema":
        if req.response_format.json_schema is None:
            raise InvalidInput(
                "response_format type 'json_schema' needs a json_schema object",
                "response_format.json_schema",
            )
        schema = req.response_format.json_schema.schema or {"type": "object"}
    if req.top_logprobs is not None and not req.logprobs:
        raise InvalidInput("top_logprobs needs logprobs to be true", "top_logprobs")
    return base.ChatRequest(
        messages=messages,
        sampling=sampling(req, req.max_completion_tokens or req.max_tokens),
        tools=tools,
        tool_choice=choice or "auto",
        json_schema=schema,
        logprobs=(req.top_logprobs or 0) if req.logprobs else None,
        continue_final=_continues(req),
    )


def _continues(req: types.ChatCompletionRequest) -> bool:
    """Whether to continue the final message, which must then be the assistant's."""
    if not req.continue_final_message:
        return False
    if req.messages[-1].role != "assistant" or len(req.messages) < 2:
        raise InvalidInput(
            "continue_final_message needs an assistant message last, after another message",
            "continue_final_message",
        )
    return True


def completion_requests(req: types.CompletionRequest) -> list[base.CompletionRequest]:
    """One runtime request per prompt; OpenAI's default of 16 tokens applies."""
    prompts = [req.prompt] if isinstance(req.prompt, str) else req.prompt
    settings = sampling(req, req.max_tokens or 16)
    return [
        base.CompletionRequest(p, settings, req.suffix, bool(req.echo), req.logprobs)
        for p in prompts
    ]


# -- responses ---------------------------------------------------------------------------


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def usage(prompt: int, completion: int, cached: int = 0) -> dict[str, Any]:
    """OpenAI's usage object; `cached` of the prompt tokens came from the KV cache (prefix
    reuse), as `prompt_tokens_details.cached_tokens`."""
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    }


def chat_logprobs(logprobs: tuple[base.TokenLogprob, ...] | None) -> dict[str, Any] | None:
    if logprobs is None:
        return None
    return {
        "content": [
            {
                "token": lp.token,
                "logprob": lp.logprob,
                "bytes": list(lp.token.encode() if lp.token_bytes is None else lp.token_bytes),
                "top_logprobs": [
                    {"token": t, "logprob": p, "bytes": list(b)}
                    for (t, p), b in zip(
                        lp.top, lp.top_bytes or [t.encode() for t, _ in lp.top], strict=True
                    )
                ],
            }
            for lp in logprobs
        ],
        "refusal": None,
    }


def tool_calls_json(calls: tuple[base.ToolCall, ...], streamed: bool = False) -> list[dict]:
    return [
        {
            **({"index": i} if streamed else {}),
            "id": c.id,
            "type": "function",
            "function": {"name": c.name, "arguments": c.arguments},
        }
        for i, c in enumerate(calls)
    ]


def chat_completion(model: str, results: list[base.TextResult]) -> dict[str, Any]:
    choices = []
    for i, r in enumerate(results):
        message: dict[str, Any] = {
            "role": "assistant",
            "content": None if r.tool_calls and not r.text else r.text,
            "refusal": None,
        }
        if r.tool_calls:
            message["tool_calls"] = tool_calls_json(r.tool_calls)
        choices.append(
            {
                "index": i,
                "message": message,
                "logprobs": chat_logprobs(r.logprobs),
                "finish_reason": r.finish_reason,
            }
        )
    return {
        "id": new_id("chatcmpl"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "usage": usage(
            results[0].prompt_tokens,
            sum(r.completion_tokens for r in results),
            results[0].cached_tokens,
        ),
    }


def chat_chunk(
    cid: str, created: int, model: str, choices: list[dict[str, Any]], with_usage: bool
) -> dict[str, Any]:
    chunk = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": choices,
    }
    if with_usage:
        chunk["usage"] = None
    return chunk


def call_pieces_json(pieces: tuple[base.ToolCallPiece, ...]) -> list[dict[str, Any]]:
    """Streamed tool-call deltas as OpenAI sends them: index, id and name, then arguments."""
    out = []
    for p in pieces:
        function = (
            {"name": p.name, "arguments": p.arguments} if p.id else {"arguments": p.arguments}
        )
        head = {"id": p.id, "type": "function"} if p.id else {}
        out.append({"index": p.index, **head, "function": function})
    return out


def chat_delta_choice(
    index: int, delta: base.TextDelta, first: bool, calls_streamed: bool = False
) -> dict[str, Any]:
    """A streamed choice; the first delta of each choice also carries the role. Tool calls
    go out as their pieces when the runtime streamed them (`calls_streamed`), else whole."""
    body: dict[str, Any] = {"role": "assistant", "content": delta.text} if first else {}
    if delta.text:
        body["content"] = delta.text
    if delta.call_pieces:
        body["tool_calls"] = call_pieces_json(delta.call_pieces)
    elif delta.tool_calls and not calls_streamed:
        body["tool_calls"] = tool_calls_json(delta.tool_calls, streamed=True)
    return {
        "index": index,
        "delta": body,
        "logprobs": chat_logprobs(delta.logprobs),
        "finish_reason": delta.finish_reason,
    }


def completion_logprobs(
    logprobs: tuple[base.TokenLogprob, ...] | None, offset: int = 0
) -> dict[str, Any] | None:
    if logprobs is None:
        return None
    offsets = []
    for lp in logprobs:
        offsets.append(offset)
        offset += len(lp.token)
    return {
        "tokens": [lp.token for lp in logprobs],
        "token_logprobs": [lp.logprob for lp in logprobs],
        "top_logprobs": [dict(lp.top) if lp.top else None for lp in logprobs],
        "text_offset": offsets,
    }


def completion(model: str, results: list[base.TextResult]) -> dict[str, Any]:
    return {
        "id": new_id("cmpl"),
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": i,
                "text": r.text,
                "logprobs": completion_logprobs(r.logprobs),
                "finish_reason": r.finish_reason,
            }
            for i, r in enumerate(results)
        ],
        "usage": usage(
            sum(r.prompt_tokens for r in results),
            sum(r.completion_tokens for r in results),
            sum(r.cached_tokens for r in results),
        ),
    }


def embeddings(
    model: str, result: base.Embeddings, encoding: str | None, dimensions: int | None
) -> dict[str, Any]:
    vectors = np.asarray(result.vectors, dtype=np.float32)
    encoding = encoding or "float"
    if dimensions is not None:
        if dimensions > vectors.shape[1]:
            raise InvalidInput(
                f"dimensions is {dimensions} but model {model!r} gives {vectors.shape[1]}",
                "dimensions",
            )
        vectors = vectors[:, :dimensions]
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors = vectors / np.where(norms == 0, 1, norms)
    data = [
        {
            "object": "embedding",
            "index": i,
            "embedding": b64(v.astype("<f4").tobytes()) if encoding == "base64" else v.tolist(),
        }
        for i, v in enumerate(vectors)
    ]
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": result.prompt_tokens, "total_tokens": result.prompt_tokens},
    }


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
