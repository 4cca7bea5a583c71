"""Model output as safe HTML: Markdown (markdown-it-py), code coloured by Pygments, and the
result cleaned by nh3 against an allowlist; and the same, block by block, while it streams.

markdown-it-py with `html` off escapes raw HTML and refuses `javascript:`-style links; nh3
then keeps only the tags, attributes and URL schemes below, so a fault in either alone still
cannot put a script or an event handler on the page.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any

from markupsafe import Markup

if TYPE_CHECKING:  # the libraries themselves load at the first reply: `serve` starts faster
    from markdown_it import MarkdownIt
    from markdown_it.token import Token
    from pygments.formatters import HtmlFormatter
    from pygments.lexer import Lexer

LANGUAGE = re.compile(r"[\w+#.-]{1,20}")

TAGS = {
    "p", "br", "hr", "strong", "em", "s", "del", "code", "pre", "blockquote",
    "ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6",
    "table", "thead", "tbody", "tr", "th", "td", "a", "div", "span", "button",
}  # fmt: skip
ATTRIBUTES = {
    "a": {"href", "title"},
    "div": {"class", "data-copy-scope"},
    "span": {"class"},
    "button": {"type", "class", "data-copy"},
    "ol": {"start"},
}
"""No `style`: the page's Content-Security-Policy allows no inline styles (so a table's
column alignment is dropped)."""
SCHEMES = {"http", "https", "mailto"}


def language_of(info: str) -> str:
    """The fence's language tag if it looks like one (`python`, `c++`), else ''."""
    word = info.strip().split(" ", 1)[0]
    return word if LANGUAGE.fullmatch(word) else ""


@cache
def lexer_for(language: str) -> Lexer | None:
    from pygments.lexers import get_lexer_by_name
    from pygments.util import ClassNotFound

    try:
        return get_lexer_by_name(language) if language else None
    except ClassNotFound:
        return None


@cache
def formatter() -> HtmlFormatter:
    from pygments.formatters import HtmlFormatter

    return HtmlFormatter(nowrap=True)


def coloured(code: str, language: str) -> Markup:
    """Code as escaped HTML, with Pygments' token classes where the language is known."""
    lexer = lexer_for(language.lower())
    if lexer is None:
        return Markup("{}").format(code)
    from pygments import highlight

    return Markup(highlight(code, lexer, formatter()))


def code_block(code: str, language: str, colour: bool = True) -> Markup:
    """A code block with a language label and a copy button; `code` is raw text. Without
    `colour`, its code is escaped text only (Pygments takes about 7 ms per KB of Python)."""
    label = Markup('<span class="code-lang">{}</span>').format(language or "code")
    code = code.removesuffix("\n")
    return Markup(
        '<div class="code" data-copy-scope>'
        '<div class="code-head">{}'
        '<button type="button" class="copy" data-copy="code">Copy</button></div>'
        "<pre><code>{}</code></pre></div>"
    ).format(label, coloured(code, language) if colour else code)


def _fence(_renderer: Any, tokens: Sequence[Token], idx: int, *_: Any) -> str:
    token = tokens[idx]
    return str(code_block(token.content, language_of(token.info)))


def _plain_fence(_renderer: Any, tokens: Sequence[Token], idx: int, *_: Any) -> str:
    token = tokens[idx]
    return str(code_block(token.content, language_of(token.info), colour=False))


@cache
def markdown(colour: bool = True) -> MarkdownIt:
    """CommonMark with tables and strikethrough; no raw HTML and no images. Code blocks are
    coloured by Pygments unless `colour` is off."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
    md.disable("image")
    md.add_render_rule("fence", _fence if colour else _plain_fence)
    md.add_render_rule("code_block", _fence if colour else _plain_fence)
    return md


def clean(html: str) -> Markup:
    import nh3

    return Markup(
        nh3.clean(
            html,
            tags=TAGS,
            attributes=ATTRIBUTES,
            url_schemes=SCHEMES,
            link_rel="noopener noreferrer nofollow",
        )
    )


@lru_cache(maxsize=256)
def format_reply(text: str) -> Markup:
    """A reply as safe HTML. An unclosed fence (a reply cut short) runs to the end. The last
    256 are kept: a conversation's page shows its stored replies again at every visit, and
    colouring code costs about 7 ms per KB."""
    return clean(markdown().render(text))


def top_level_starts(tokens: list[Token]) -> list[int]:
    """The first source line of each top-level block."""
    return [t.map[0] for t in tokens if t.level == 0 and t.nesting >= 0 and t.map]


class StreamingMarkdown:
    """A reply's Markdown as it grows: each finished block is rendered once; only the open
    last block, the tail, is rendered again as text arrives. The tail's code is not coloured:
    Pygments over a long open code block at every render would hold the server's event loop
    (90 ms for 12 KB of Python), so code takes its colours once its block is finished.

    A block is finished once another top-level block has begun after it. Rendering the
    finished part alone can differ from the whole in rare cases (a link whose reference is
    defined later); the final render of the whole reply replaces both at the end.
    """

    def __init__(self) -> None:
        self.text = ""
        self.open_from = 0  # where the unfinished part of `text` begins

    def feed(self, piece: str) -> tuple[Markup, Markup]:
        """Add text; (HTML of blocks finished just now, HTML of the whole open tail)."""
        self.text += piece
        md = markdown(colour=False)
        tail = self.text[self.open_from :]
        tokens = md.parse(tail)
        starts = top_level_starts(tokens)
        if len(starts) < 2:
            return Markup(""), clean(md.renderer.render(tokens, md.options, {}))
        lines = tail.splitlines(keepends=True)
        cut = sum(len(line) for line in lines[: starts[-1]])
        self.open_from += cut
        return format_reply(tail[:cut]), clean(md.render(tail[cut:]))
