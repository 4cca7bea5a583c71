"""A playground reply's request, whole: the model's ChatRequest, and the same request as the
OpenAI JSON and the OIP (KServe v2) tensors that the inspector shows, curl sends and a run
card runs again."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from localoip.app.playground.chat_settings import ChatSettings
from localoip.app.playground.records.chat_images import ImageFile
from localoip.app.playground.records.conversations import Step
from localoip.runtimes.capabilities import (
    IMAGE_MARKER,
    ChatImage,
    ChatMessage,
    ChatRequest,
    chat_images,
)
from localoip.runtimes.wire.oip import chat_inputs, encode_request
from localoip.runtimes.wire.openai.requests import content_parts, sampling_fields


def with_images(message: ChatMessage, images: list[bytes], where: str) -> ChatMessage:
    """`message` carrying `images` before its text, each named `where[i]` in errors: what
    /v1 reads from image_url parts followed by a text part."""
    if not images:
        return message
    carried = tuple(ChatImage(data, f"{where}[{i}]") for i, data in enumerate(images))
    text = IMAGE_MARKER * len(images) + (message.content or "")
    return ChatMessage(message.role, text, reasoning=message.reasoning, images=carried)


def history(path: list[Step], images: Mapping[str, ImageFile]) -> list[ChatMessage]:
    """The messages of a shown path, as a model reads them (empty ones left out); a reply
    keeps its reasoning, which goes back to the model as its template renders it, and a
    message its images (`images`: the path's, by SHA-256), before its text."""
    out = []
    for i, s in enumerate(path):
        m = s.message
        if m.content.strip() or m.images:
            said = ChatMessage(m.role, m.content, reasoning=m.meta.reasoning)
            carried = [images[h].data for h in m.images]
            out.append(with_images(said, carried, f"messages[{i}].images"))
    return out


@dataclass(frozen=True, slots=True)
class ReplyRequest:
    """The settings, the conversation before the reply (no system message), and the text the
    reply continues from (a branch from a token; empty for a whole reply)."""

    settings: ChatSettings
    past: list[ChatMessage]
    prefix: str = ""

    def messages(self) -> list[ChatMessage]:
        """What the model reads: the system prompt, the conversation, the reply so far."""
        system = [ChatMessage("system", self.settings.system)] if self.settings.system else []
        started = [ChatMessage("assistant", self.prefix)] if self.prefix else []
        return [*system, *self.past, *started]

    def chat_request(self) -> ChatRequest:
        """The request the model is given."""
        return ChatRequest(
            self.messages(),
            self.settings.sampling(),
            logprobs=self.settings.top_logprobs,
            continue_final=bool(self.prefix),
            reasoning_effort=self.settings.reasoning_effort,
        )

    def wire_messages(self) -> list[dict[str, Any]]:
        """The messages as /v1 JSON: role and content (image_url parts, as data: URLs, and
        a text part for a message with images), and an earlier reply's reasoning as its
        `reasoning_content`."""
        return [
            {"role": m.role, "content": content_parts(m) or ""}
            | ({"reasoning_content": m.reasoning} if m.reasoning else {})
            for m in self.messages()
        ]

    def openai_fields(self) -> dict[str, Any]:
        """The request's fields beyond model and messages, by /v1 name: the settings given,
        and vLLM's `continue_final_message` for a reply that continues a prefix."""
        given = {k: v for k, v in self.settings.api_fields().items() if v is not None}
        if self.prefix:
            given["continue_final_message"] = True
        return given

    def openai_body(self) -> dict[str, Any]:
        """The streamed /v1/chat/completions body, exactly as the replay and curl send it."""
        return {
            "model": self.settings.model,
            "messages": self.wire_messages(),
            **self.openai_fields(),
            "stream": True,
        }

    def oip_body(self) -> dict[str, Any]:
        """The same chat as an OIP infer body (`POST /v2/models/NAME/infer`), built by the
        project's one tensor codec: role and content BYTES tensors (text only: images have
        no tensor there), settings as parameters."""
        effort = self.settings.reasoning_effort
        parameters = sampling_fields(self.settings.sampling())
        texts = [
            replace(m, content=(m.content or "").replace(IMAGE_MARKER, ""), images=())
            for m in self.messages()
        ]
        body, _ = encode_request(
            chat_inputs(texts),
            parameters | ({} if effort is None else {"reasoning_effort": effort}),
        )
        return json.loads(body)

    def beyond_tensors(self) -> list[str]:
        """What the OIP form cannot carry: its chat tensors are role and content only."""
        lost = []
        if self.settings.top_logprobs is not None:
            lost.append("token probabilities (logprobs)")
        if self.prefix:
            lost.append("continuing the reply from a prefix (continue_final_message)")
        if any(m.reasoning for m in self.past):
            lost.append("the earlier replies' reasoning (reasoning_content)")
        if chat_images(self.past):
            lost.append("the images (the chat tensors carry text only)")
        return lost
