"""Model output as safe HTML: escape everything first, then add light formatting."""

from __future__ import annotations

import re

from markupsafe import Markup, escape

FENCE = re.compile(r"^```[ \t]*([^\n`]*)\n(.*?)(?:\n```[ \t]*(?:\n|\Z)|\Z)", re.M | re.S)
"""A fenced code block; an unclosed fence (a reply cut short) runs to the end."""

INLINE_CODE = re.compile(r"`([^`\n]+)`")
LANGUAGE = re.compile(r"[\w+#.-]{1,20}")


def language_of(info: str) -> str:
    """The fence's language tag if it looks like one (`python`, `c++`), else ''."""
    word = info.strip().split(" ", 1)[0]
    return word if LANGUAGE.fullmatch(word) else ""


def code_block(code: str, language: str) -> Markup:
    """A code block with a language label and a copy button; `code` is raw text."""
    label = Markup('<span class="code-lang">{}</span>').format(language or "code")
    return Markup(
        '<div class="code" data-copy-scope>'
        '<div class="code-head">{}'
        '<button type="button" class="copy" data-copy="code">Copy</button></div>'
        "<pre><code>{}</code></pre></div>"
    ).format(label, code)


def prose(text: str) -> Markup:
    """Plain text with `inline code`; the text is escaped before any markup is added."""
    escaped = str(escape(text))
    return Markup(INLINE_CODE.sub(r"<code>\1</code>", escaped))


def format_reply(text: str) -> Markup:
    """A reply as HTML for a `white-space: pre-wrap` box: prose, inline code, fenced blocks.

    Every piece of model text passes through `escape` before it meets markup, so
    `<script>` or `<img onerror>` in a reply always shows as text.
    """
    parts: list[Markup] = []
    position = 0
    for match in FENCE.finditer(text):
        # A block has margins of its own: drop the blank line that sets it apart in markdown.
        before = text[position : match.start()]
        if position:
            before = before.removeprefix("\n")
        parts.append(prose(before.removesuffix("\n")))
        parts.append(code_block(match[2], language_of(match[1])))
        position = match.end()
    after = text[position:]
    parts.append(prose(after.removeprefix("\n") if position else after))
    return Markup("").join(parts)
