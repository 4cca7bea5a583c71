"""POST /tokenize and /detokenize in vLLM's shapes, on the model's own tokenizer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import msgspec
from litestar import Controller, Request, post
from localoip.app.api.openai.common import resolve
from localoip.app.core.errors import CapabilityMissing, InvalidInput
from localoip.app.core.image_urls import ImageFetcher
from localoip.app.core.registry import ModelHandle, Registry
from localoip.app.http.bodies import JSONObject, decode
from localoip.runtimes.capabilities import Capability, ChatTokenizerModel, TokenizerModel
from localoip.runtimes.wire.openai.requests import (
    ChatCompletionRequest,
    Message,
    ToolDefinition,
    chat_request,
)

T = TypeVar("T")


class TokenizeRequest(msgspec.Struct, kw_only=True):
    """vLLM's TokenizeCompletionRequest (`prompt`) or TokenizeChatRequest (`messages`)."""

    model: str | None = None
    prompt: str | None = None
    messages: list[Message] | None = None
    tools: list[ToolDefinition] | None = None
    add_special_tokens: bool | None = None  # vLLM's default: true for a prompt, false for messages
    add_generation_prompt: bool = True
    continue_final_message: bool = False
    chat_template: str | None = None
    chat_template_kwargs: dict[str, Any] | None = None
    return_token_strs: bool = False


class Tokenized(msgspec.Struct, kw_only=True):
    count: int
    max_model_len: int
    tokens: list[int]
    token_strs: list[str] | None  # when return_token_strs was asked for


class DetokenizeRequest(msgspec.Struct, kw_only=True):
    tokens: list[int]
    model: str | None = None


class Detokenized(msgspec.Struct, kw_only=True):
    prompt: str


def _chat_settings(req: TokenizeRequest) -> None:
    """Refuse the chat settings llama.cpp's chat formats have no way to honour."""
    fixed = {
        "add_generation_prompt": (req.add_generation_prompt, True),
        "continue_final_message": (req.continue_final_message, False),
        "add_special_tokens": (bool(req.add_special_tokens), False),
        "chat_template": (req.chat_template, None),
        "chat_template_kwargs": (req.chat_template_kwargs, None),
    }
    for param, (value, supported) in fixed.items():
        if value != supported:
            raise InvalidInput(
                f"{param} must be {msgspec.json.encode(supported).decode()} with messages: the "
                "tokens are the prompt the chat route builds, with the model's chat format",
                param,
            )


async def _on_tokenizer(
    handle: ModelHandle, capability: Capability, chat: bool, fn: Callable[[Any], T]
) -> T:
    """fn(runtime) on the model's worker, if the runtime has a tokenizer (for chats, too)."""

    def run(runtime: Any) -> T:
        if not isinstance(runtime, ChatTokenizerModel if chat else TokenizerModel):
            raise CapabilityMissing(f"model {handle.name!r} has no tokenizer", "model")
        return fn(runtime)

    return await handle.call(capability, run)


class TokenizeController(Controller):
    @post("/tokenize", status_code=200)
    async def tokenize(
        self, request: Request, registry: Registry, image_fetcher: ImageFetcher
    ) -> JSONObject:
        req = decode(await request.body(), TokenizeRequest)
        handle = resolve(registry, req.model, None)
        if (req.prompt is None) == (req.messages is None):
            raise InvalidInput("give either prompt or messages", "prompt")
        if req.messages is not None:
            if not req.messages:
                raise InvalidInput("messages must not be empty", "messages")
            _chat_settings(req)
            chat = chat_request(ChatCompletionRequest(messages=req.messages, tools=req.tools))
            handle.require(Capability.CHAT)
            chat = await image_fetcher.fetched(chat)
            capability = Capability.CHAT

            def encode(rt: ChatTokenizerModel) -> list[int]:
                return rt.tokenize_chat(chat)
        else:
            if not req.prompt:
                raise InvalidInput("prompt must not be empty", "prompt")
            capability, text = min(handle.capabilities), req.prompt
            add_special = req.add_special_tokens is not False

            def encode(rt: TokenizerModel) -> list[int]:
                return rt.tokenize(text, add_special)

        def answer(rt: Any) -> Tokenized:
            tokens = encode(rt)
            return Tokenized(
                count=len(tokens),
                max_model_len=rt.max_model_len(),
                tokens=tokens,
                token_strs=rt.token_strings(tokens) if req.return_token_strs else None,
            )

        return await _on_tokenizer(handle, capability, req.messages is not None, answer)

    @post("/detokenize", status_code=200)
    async def detokenize(self, request: Request, registry: Registry) -> dict[str, str]:
        req = decode(await request.body(), DetokenizeRequest)
        handle = resolve(registry, req.model, None)
        prompt = await _on_tokenizer(
            handle, min(handle.capabilities), False, lambda rt: rt.detokenize(req.tokens)
        )
        return Detokenized(prompt=prompt)
