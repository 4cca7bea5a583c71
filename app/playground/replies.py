"""A reply as the page shows it: its text, finish, figures and settings, its tokens with their
probabilities, and the point a branch from one of its tokens starts from."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from localoip.app.core.errors import NotFound
from localoip.app.playground.chat_settings import ChatSettings
from localoip.app.playground.formatting import format_reply
from localoip.app.playground.records.conversations import (
    MessageMeta,
    Siblings,
    Step,
    TokenChoice,
)
from markupsafe import Markup

FINISH_WORDS = {
    "length": "reached max tokens",
    "stop": "the model finished",
    "stopped": "stopped by you",
    "time limit": "ran longer than the playground allows",
    "tool_calls": "the model called a tool",
    "error": "failed",
}

INTERRUPTED = "The server stopped while this reply was being written; what arrived is kept."


@dataclass(slots=True)
class ReplyView:
    """What the template of an assistant turn shows."""

    id: str
    model: str
    text: str
    finish_reason: str | None
    error: str | None
    figures: list[str] = field(default_factory=list)
    settings: list[str] = field(default_factory=list)
    conversation: str = ""
    siblings: Siblings | None = None
    tokens: list[TokenView] = field(default_factory=list)
    stored: bool = False  # a finished reply in the store: it can be inspected and run again
    reasoning: str = ""  # what the model reasoned before the reply
    reasoning_words: str = ""  # its token count and time, in words

    @classmethod
    def of(cls, conversation: str, step: Step) -> ReplyView:
        """A stored reply (a step of conversation `conversation`) as shown."""
        m, meta = step.message, step.message.meta
        interrupted = m.status == "interrupted"
        return cls(
            id=m.id,
            model=meta.model or "",
            text=m.content,
            finish_reason="error" if meta.error or interrupted else meta.finish_reason,
            error=INTERRUPTED if interrupted else meta.error,
            figures=figures(meta),
            settings=ChatSettings.of(meta).summary(),
            conversation=conversation,
            siblings=step.siblings,
            tokens=token_views(meta.tokens or []),
            stored=m.status == "done",
            reasoning=meta.reasoning or "",
            reasoning_words=reasoning_words(meta),
        )

    def blinded(self, letter: str) -> ReplyView:
        """The reply as a blind arena's column, before the vote: called by its letter, with
        nothing that names the model or its settings (no inspector, no run card)."""
        return replace(self, model=blind_name(letter), settings=[], stored=False)

    @property
    def html(self) -> Markup:
        """The reply rendered from Markdown, its code coloured."""
        return format_reply(self.text)

    @property
    def finish_words(self) -> str:
        """The finish reason with its meaning, as in "length (reached max tokens)"."""
        reason = self.finish_reason or "error"
        return f"{reason} ({FINISH_WORDS[reason]})" if reason in FINISH_WORDS else reason


@dataclass(frozen=True, slots=True)
class TokenView:
    """A token as the probability view shows it: its text, its probability in percent, and
    a shade from 0 (unlikely) to 4 (near certain)."""

    index: int
    text: str
    percent: float | None

    @property
    def shade(self) -> int:
        return 4 if self.percent is None else min(4, int(self.percent / 20))


def probability(logprob: float | None) -> float | None:
    """A natural-log probability as a percentage (None stays None)."""
    return None if logprob is None else 100.0 * math.exp(logprob)


def token_views(tokens: list[TokenChoice]) -> list[TokenView]:
    """Stored tokens as the probability view shows them, indexed from 0."""
    return [TokenView(i, t.token, probability(t.logprob)) for i, t in enumerate(tokens)]


def blind_name(letter: str) -> str:
    """What a blind arena's column is called in the Chat tab until the vote."""
    return f"Column {letter}"


def figures(meta: MessageMeta) -> list[str]:
    """A reply's figures in words: time to first token, speed and token count."""
    out = []
    if meta.time_to_first_token_ms is not None:
        out.append(f"first token {meta.time_to_first_token_ms:.0f} ms")
    if meta.tokens_per_second is not None:
        out.append(f"{meta.tokens_per_second:.1f} tokens/s")
    tokens = meta.completion_tokens or 0
    out.append(f"{tokens} token{'' if tokens == 1 else 's'}")
    return out


def reasoning_words(meta: MessageMeta) -> str:
    """A reply's reasoning in a few words, as its fold shows them: "Reasoning · 42 tokens ·
    1.3 s" (empty for a reply without reasoning)."""
    if not meta.reasoning:
        return ""
    tokens = meta.reasoning_tokens or 0
    words = ["Reasoning", f"{tokens} token{'' if tokens == 1 else 's'}"]
    if meta.reasoning_ms is not None:
        words.append(f"{meta.reasoning_ms / 1000:.1f} s")
    return " · ".join(words)


def lost_reply(job_id: str) -> ReplyView:
    """What stands for a reply that is neither running nor stored."""
    return ReplyView(
        id=job_id,
        model="",
        text="",
        finish_reason="error",
        error="This reply is no longer available: the server restarted or has forgotten it.",
    )


def branch_point(meta: MessageMeta, index: int, alternative: int) -> tuple[str, list[TokenChoice]]:
    """The text a branch from token `index` starts with (the tokens before it, then its
    `alternative`-th most likely choice), and those tokens. NotFound (404) for a token or an
    alternative the reply does not have."""
    tokens = meta.tokens or []
    if not 0 <= index < len(tokens):
        raise NotFound(f"This reply has no token {index}.", "index")
    top = tokens[index].top
    if not 0 <= alternative < len(top):
        raise NotFound(f"Token {index} has no alternative {alternative}.", "alternative")
    chosen, logprob = top[alternative]
    took = tokens[index]
    raw = took.bytes_of(alternative)
    kept = [
        *tokens[:index],
        TokenChoice(chosen, logprob, top, None if raw == chosen.encode() else raw, took.top_raw),
    ]
    return b"".join(t.bytes_of() for t in kept).decode("utf-8", errors="replace"), kept
