"""Content blocks, which requests and replies share: `text`, `thinking` and `tool_use` go both
ways; `tool_result`, `image` and `document` come only in requests.

Fields are Anthropic's (docs.claude.com/en/api/messages, the `anthropic` SDK's `types/`). A
block's `type` is its msgspec tag, so a block of another type is a validation error that names
it and where it is. Fields a block may carry that localoip has no use for (`cache_control`,
`citations`) are ignored.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec


class Block(msgspec.Struct, tag_field="type", kw_only=True):
    """A content block; `type` is its tag."""


class Text(Block, tag="text"):
    text: str


class Thinking(Block, tag="thinking"):
    """Reasoning before the answer. `signature` is Claude's proof that it wrote the thinking;
    localoip sends "" and ignores the one a client sends back."""

    thinking: str
    signature: str = ""


class ToolUse(Block, tag="tool_use"):
    """A call of tool `name` with arguments `input` (a JSON object); `id` pairs it with the
    `tool_result` of the next user message."""

    id: str
    name: str
    input: dict[str, Any]


class Source(msgspec.Struct, tag_field="type", kw_only=True):
    """Where an image's bytes are; `type` is its tag."""


class Base64Source(Source, tag="base64"):
    media_type: Literal["image/jpeg", "image/png", "image/gif", "image/webp"]
    data: str


class URLSource(Source, tag="url"):
    """An image the server fetches (when `[server] image_urls` is on)."""

    url: str


class FileSource(Source, tag="file"):
    """A file uploaded to Anthropic's Files API, which localoip does not have."""

    file_id: str


class Image(Block, tag="image"):
    """An image, read by a model with a projector (`mmproj`)."""

    source: Base64Source | URLSource | FileSource


class Document(Block, tag="document"):
    """A document (`source`: PDF, plain text or content blocks); not read by any model here."""

    source: dict[str, Any]


class ToolResult(Block, tag="tool_result"):
    """What the tool call `tool_use_id` returned: text, or blocks; `is_error` when it failed."""

    tool_use_id: str
    content: str | list[Text | Image | Document] = ""
    is_error: bool = False


RequestBlock = Text | Image | Document | ToolUse | ToolResult | Thinking
"""A block of a request's message."""
ReplyBlock = Thinking | Text | ToolUse
"""A block of a reply, in the order they come: the reasoning, the answer, the calls."""
