"""Responses API items, told apart by `type`: messages, reasoning, function calls and their
outputs, and compactions. Input items are stored as they are read, and a response's output is
made of them."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from localoip.runtimes.capabilities import IMAGE_MARKER


def new_id(prefix: str) -> str:
    """A fresh id in the Responses API's style: `resp_<32 hex digits>`."""
    return f"{prefix}_{uuid.uuid4().hex}"


class InputText(msgspec.Struct, tag="input_text", tag_field="type", kw_only=True):
    text: str


class InputImage(msgspec.Struct, tag="input_image", tag_field="type", kw_only=True):
    """An image in a user's message, kept as it came: a data: URL or base64."""

    image_url: str
    detail: str = "auto"


class OutputText(msgspec.Struct, tag="output_text", tag_field="type", kw_only=True):
    text: str
    annotations: list[Any] = []
    logprobs: list[Any] = []


class ReasoningText(msgspec.Struct, tag="reasoning_text", tag_field="type", kw_only=True):
    text: str


class SummaryText(msgspec.Struct, tag="summary_text", tag_field="type", kw_only=True):
    text: str


class _Item(msgspec.Struct, tag_field="type", kw_only=True):
    id: str


class MessageItem(_Item, tag="message", kw_only=True):
    """A message; the assistant's has output_text parts, any other role's input_text parts."""

    role: str
    status: str = "completed"
    content: list[InputText | OutputText | InputImage]

    @property
    def text(self) -> str:
        """Its text; an image stands as IMAGE_MARKER (see `images`)."""
        return "".join(
            IMAGE_MARKER if isinstance(part, InputImage) else part.text for part in self.content
        )

    @property
    def images(self) -> list[str]:
        """The image URLs of its input_image parts (data:, base64, or one the server fetches),
        in order."""
        return [part.image_url for part in self.content if isinstance(part, InputImage)]


class ReasoningItem(_Item, tag="reasoning", kw_only=True):
    """What the model reasoned before its answer, whole, as `reasoning_text` content; the
    summary stays empty (no model here writes one apart)."""

    summary: list[SummaryText] = []
    content: list[ReasoningText] = []
    status: str = "completed"

    @property
    def text(self) -> str:
        return "".join(part.text for part in self.content)


class FunctionCallItem(_Item, tag="function_call", kw_only=True):
    call_id: str
    name: str
    arguments: str  # JSON text
    status: str = "completed"


class FunctionCallOutputItem(_Item, tag="function_call_output", kw_only=True):
    call_id: str
    output: str
    status: str = "completed"


class CompactionItem(_Item, tag="compaction", kw_only=True):
    """The conversation before it, summarised and sealed: only this server can read it."""

    encrypted_content: str


class CompactionTriggerItem(_Item, tag="compaction_trigger", kw_only=True):
    """Last in an input: asks for the response to be a compaction."""


Item = (
    MessageItem
    | ReasoningItem
    | FunctionCallItem
    | FunctionCallOutputItem
    | CompactionItem
    | CompactionTriggerItem
)


def message_item(iid: str, role: str, texts: list[str], status: str = "completed") -> MessageItem:
    """A message of texts: output_text parts for the assistant, input_text for other roles."""
    parts: list[InputText | OutputText] = [
        OutputText(text=t) if role == "assistant" else InputText(text=t) for t in texts
    ]
    return MessageItem(id=iid, role=role, status=status, content=parts)


def user_message(text: str) -> MessageItem:
    return message_item(new_id("msg"), "user", [text])
