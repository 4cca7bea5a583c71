"""The routes vLLM serves beside OpenAI's, in its shapes: /rerank (Jina's and Cohere's shape, as
KServe serves it too), /tokenize and /detokenize."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from localoip.runtimes.wire.openai.requests import Message, ToolDefinition
from msgspec import UNSET, Meta, UnsetType


class RerankDocument(msgspec.Struct, kw_only=True):
    text: str


class RerankRequest(msgspec.Struct, kw_only=True):
    query: str
    documents: Annotated[list[str | RerankDocument], Meta(min_length=1)]
    model: str | None = None
    top_n: Annotated[int, Meta(ge=1)] | None = None  # None: every document
    return_documents: bool = True


class RerankResult(msgspec.Struct, kw_only=True):
    index: int
    relevance_score: float
    document: RerankDocument | UnsetType = UNSET  # unless return_documents is false


class RerankUsage(msgspec.Struct, kw_only=True):
    total_tokens: int


class Reranked(msgspec.Struct, kw_only=True):
    """The documents by relevance, most relevant first."""

    id: str
    model: str
    usage: RerankUsage
    results: list[RerankResult]


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
