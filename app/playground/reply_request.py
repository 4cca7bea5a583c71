"""A playground reply's request, whole: the model's ChatRequest, and the same request as the
OpenAI JSON and the OIP (KServe v2) tensors that the inspector shows, curl sends and a run
card runs again."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from localoip.app.playground.chat_settings import ChatSettings
from localoip.app.playground.records.conversations import Step
from localoip.runtimes.capabilities import ChatMessage, ChatRequest
from localoip.runtimes.wire.oip import chat_inputs, encode_request
from localoip.runtimes.wire.openai.requests import sampling_fields


def history(path: list[Step]) -> list[ChatMessage]:
    """The messages of a shown path, as a model reads them (empty ones left out); a reply
    keeps its reasoning, which goes back to the model as its template renders it."""
    return [
        ChatMessage(s.message.role, s.message.content, reasoning=s.message.meta.reasoning)
        for s in path
        if s.message.content.strip()
    ]


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

    def wire_messages(self) -> list[dict[str, str]]:
        """The messages as /v1 JSON: role and content, and an earlier reply's reasoning as
        its `reasoning_content`."""
        return [
            {"role": m.role, "content": m.content or ""}
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
        project's one tensor codec: role and content BYTES tensors, settings as parameters."""
        effort = self.settings.reasoning_effort
        parameters = sampling_fields(self.settings.sampling())
        body, _ = encode_request(
            chat_inputs(self.messages()),
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
        return lost
