"""A conversation as Markdown, written and read back: `# title`, then a `## User` or
`## Assistant (model)` heading over each message of the path shown. An assistant turn's
reasoning comes before its answer, folded in a `<details>` block (GitHub and most Markdown
readers show it closed, its summary naming the reasoning's tokens), and reads back as the
turn's reasoning. A user turn's images come before its text, each embedded as a data: URL
(`![image 1](data:image/png;base64,...)`), and read back as its images."""

from __future__ import annotations

import base64
import binascii
import re
import time
from collections.abc import Mapping

from localoip.app.core.errors import InvalidInput
from localoip.app.playground.records import chat_images
from localoip.app.playground.records.chat_images import ImageFile
from localoip.app.playground.records.conversations import (
    FORMAT,
    IMPORT_AT_MOST_BYTES,
    IMPORT_AT_MOST_MESSAGES,
    Conversation,
    ConversationFile,
    Message,
    MessageMeta,
    Role,
)

SPEAKER = re.compile(r"## (User|Assistant)(?: \((.*)\))?")
FENCE = re.compile(r"(```|~~~)")
SUMMARY = re.compile(r"<details><summary>Reasoning(?: \((\d+) tokens?\))?</summary>")
END_FOLD = "</details>"
# A turn's reasoning as `_fold` writes it, at the start of its text.
FOLDED = re.compile(SUMMARY.pattern + r"\n\n(.*?)\n\n" + END_FOLD + r"(?:\n|$)", re.DOTALL)
EMBEDDED = re.compile(r"!\[image \d+\]\(data:(image/[\w.+-]+);base64,([A-Za-z0-9+/=]+)\)")


def _fold(meta: MessageMeta) -> list[str]:
    """The lines of an assistant turn's reasoning, folded (none for a turn without)."""
    if not meta.reasoning:
        return []
    n = meta.reasoning_tokens
    count = f" ({n} token{'' if n == 1 else 's'})" if n else ""
    reasoning = meta.reasoning.strip("\n")
    return [f"<details><summary>Reasoning{count}</summary>", "", reasoning, "", END_FOLD, ""]


def markdown(conversation: Conversation, images: Mapping[str, ImageFile]) -> str:
    """The shown path as Markdown: a title, then a heading per message, a user turn's
    images (`images`: the path's, by SHA-256) embedded before its text, an assistant turn's
    reasoning folded before its answer."""
    out = [f"# {conversation.title}", ""]
    for step in conversation.path:
        m = step.message
        if m.role == "user":
            shown = [f"![image {i}]({images[h].data_url})" for i, h in enumerate(m.images, 1)]
            out += [
                "## User",
                "",
                *(line for image in shown for line in (image, "")),
                m.content,
                "",
            ]
        else:
            model = m.meta.model or "unknown model"
            out += [f"## Assistant ({model})", "", *_fold(m.meta), m.content, ""]
    return "\n".join(out)


def _assistant(model: str | None, text: str) -> tuple[str, MessageMeta]:
    """An assistant turn's answer and meta: its model, and its reasoning when the text opens
    with a fold."""
    folded = FOLDED.match(text)
    if folded is None:
        return text, MessageMeta(model=model)
    tokens = int(folded[1]) if folded[1] else None
    meta = MessageMeta(model=model, reasoning=folded[2], reasoning_tokens=tokens)
    return text[folded.end() :].strip("\n"), meta


def _embedded(text: str, kept: dict[str, ImageFile]) -> tuple[str, list[str]]:
    """A user turn's text without the images embedded before it, and their SHA-256s (each
    added to `kept`). InvalidInput for an embedded image whose data is not its type's."""
    found, lines = [], text.split("\n")
    while lines and ((lines[0] == "" and found) or EMBEDDED.fullmatch(lines[0])):
        line = lines.pop(0)
        if not line:
            continue
        kind, payload = EMBEDDED.fullmatch(line).groups()  # type: ignore[union-attr]
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInput("An embedded image is not valid base64.", "file") from None
        image = ImageFile(chat_images.digest(data), kind, data)
        chat_images.check_file([image], [])
        kept.setdefault(image.sha256, image)
        found.append(image.sha256)
    return "\n".join(lines), found


def parse_markdown(text: str) -> ConversationFile:
    """A conversation from Markdown as `markdown` writes it: `# title`, then `## User` and
    `## Assistant (model)` headings (outside code fences and reasoning folds), each over its
    message. InvalidInput for a file too large, or with no speakers or too many messages."""
    if len(text.encode()) > IMPORT_AT_MOST_BYTES:
        raise InvalidInput(f"An import takes at most {IMPORT_AT_MOST_BYTES} bytes.", "file")
    title, found, fenced, folded = "", [], False, False
    lines: list[str] = []
    for line in text.splitlines():
        heading = None if fenced or folded else SPEAKER.fullmatch(line.rstrip())
        if FENCE.match(line.lstrip()):
            fenced = not fenced
        elif not fenced and (SUMMARY.fullmatch(line) or line == END_FOLD):
            folded = line != END_FOLD
        if heading:
            found.append((heading[1], heading[2], lines := []))
        elif not found and not title and line.startswith("# "):
            title = line[2:].strip()
        elif found:
            lines.append(line)
    if not found:
        raise InvalidInput(
            "No messages found: a Markdown import needs “## User” and “## Assistant” headings.",
            "file",
        )
    messages, parent, kept = [], None, {}
    for i, (who, model, body) in enumerate(found):
        mid = f"m{i}"
        role: Role = "user" if who == "User" else "assistant"
        content, meta, images = "\n".join(body).strip("\n"), MessageMeta(), []
        if role == "assistant":
            content, meta = _assistant(model, content)
        else:
            content, images = _embedded(content, kept)
        messages.append(Message(mid, parent, role, content, time.time(), meta, images=images))
        parent = mid
    if len(messages) > IMPORT_AT_MOST_MESSAGES:
        raise InvalidInput(f"An import takes at most {IMPORT_AT_MOST_MESSAGES} messages.", "file")
    return ConversationFile(
        FORMAT, 1, title or "Imported chat", time.time(), parent, messages, [], [*kept.values()]
    )
