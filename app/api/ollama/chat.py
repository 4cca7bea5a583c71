"""POST /api/chat and /api/generate: a reply whole, or streamed as NDJSON (Ollama's default)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, post
from localoip.app.api.ollama.common import cap_num_ctx, resolve
from localoip.app.api.ollama.replies import (
    Logprobs,
    Make,
    Reply,
    apply_keep_alive,
    load_or_unload,
)
from localoip.app.core.registry import Registry
from localoip.app.http.bodies import decode
from localoip.runtimes.capabilities import Capability, ToolCall
from localoip.runtimes.wire.ollama import requests as wire
from localoip.runtimes.wire.ollama.responses import (
    ChatResponse,
    GenerateResponse,
    logprobs,
    message,
    now,
)
from msgspec import UNSET


def chat_object(model: str) -> Make:
    """/api/chat's objects for `model` (the name the request used, as Ollama echoes it)."""

    def make(
        text: str, reasoning: str, calls: tuple[ToolCall, ...], tokens: Logprobs
    ) -> ChatResponse:
        return ChatResponse(
            model=model,
            created_at=now(),
            message=message(text, reasoning, calls),
            logprobs=logprobs(tokens),
            done=False,
        )

    return make


def generate_object(model: str) -> Make:
    """/api/generate's objects: the text in `response`, the reasoning in `thinking`."""

    def make(
        text: str, reasoning: str, _calls: tuple[ToolCall, ...], tokens: Logprobs
    ) -> GenerateResponse:
        return GenerateResponse(
            model=model,
            created_at=now(),
            response=text,
            thinking=reasoning or UNSET,
            logprobs=logprobs(tokens),
            done=False,
        )

    return make


class ChatController(Controller):
    @post("/api/chat", status_code=200)
    async def ollama_chat(self, request: Request, registry: Registry) -> Any:
        """A chat's reply; no messages load the model (keep_alive 0: unload it)."""
        req = decode(await request.body(), wire.ChatRequest)
        handle = resolve(registry, req.model)
        wire.keep_alive_seconds(req.keep_alive)  # a bad one refused before anything is done
        make = chat_object(req.model)
        if not req.messages:
            return await load_or_unload(handle, apply_keep_alive(handle, req.keep_alive), make)
        chat = wire.chat_request(req)
        cap_num_ctx(handle, req.options)
        unload = apply_keep_alive(handle, req.keep_alive)
        return await Reply(handle, Capability.CHAT, chat, make, unload).answer(req.streams)

    @post("/api/generate", status_code=200)
    async def ollama_generate(self, request: Request, registry: Registry) -> Any:
        """A prompt's reply: through the chat template, or `raw` (or with a `suffix`) as a
        completion; no prompt loads the model (keep_alive 0: unload it)."""
        req = decode(await request.body(), wire.GenerateRequest)
        handle = resolve(registry, req.model)
        wire.keep_alive_seconds(req.keep_alive)  # a bad one refused before anything is done
        make = generate_object(req.model)
        if not req.prompt and req.suffix is None and not req.images:
            return await load_or_unload(handle, apply_keep_alive(handle, req.keep_alive), make)
        capability, neutral = wire.generate_request(req)
        cap_num_ctx(handle, req.options)
        unload = apply_keep_alive(handle, req.keep_alive)
        return await Reply(handle, capability, neutral, make, unload).answer(req.streams)
