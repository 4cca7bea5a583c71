"""A reply being written: the job that streams it from the model, renders it as it comes (a
few times a second at most) and keeps it in the store with its figures when it ends."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from importlib.metadata import version
from sqlite3 import Connection

from localoip.app.core.model_digest import reading_digest
from localoip.app.core.registry import ModelHandle
from localoip.app.core.store import Database
from localoip.app.playground.chat_settings import ChatSettings
from localoip.app.playground.formatting import StreamingMarkdown, format_reply
from localoip.app.playground.jobs import Job, Render
from localoip.app.playground.messages import explain
from localoip.app.playground.records import conversations
from localoip.app.playground.records.conversations import MessageMeta, Step, TokenChoice
from localoip.app.playground.replies import ReplyView, figures, reasoning_words
from localoip.runtimes.capabilities import Capability, ChatRequest, Speculation, TokenLogprob
from localoip.runtimes.folding import Fold
from markupsafe import escape

SHOW_EVERY = 1 / 30
"""Seconds between two renders of a streaming reply: text that comes faster is rendered and
sent together, so neither the server (Markdown, Pygments, nh3) nor the page (a swap and a
layout of the open block) works once per token. A pause sends what is waiting at once."""


@dataclass(slots=True)
class ReplyStats:
    """Timings of one reply, from the moment its work began (waiting for the model included)."""

    started: float = 0.0
    first_token: float | None = None
    ended: float | None = None
    tokens: int = 0
    prompt_tokens: int | None = None
    reasoning_started: float | None = None  # the first reasoning token, and the last
    reasoning_ended: float | None = None
    reasoning_tokens: int = 0  # counted as they come, until the runtime's count
    speculation: Speculation | None = None  # what speculative decoding did, when it ran

    def token(self, reasoning: bool) -> None:
        """A token has come now: an answer's, or (`reasoning`) a reasoning one."""
        now = time.perf_counter()
        if self.first_token is None:
            self.first_token = now
        self.tokens += 1
        if reasoning:
            self.reasoning_started = self.reasoning_started or now
            self.reasoning_ended = now
            self.reasoning_tokens += 1

    def reasoning_ms(self) -> float | None:
        """Milliseconds from the first reasoning token to the last; None without reasoning."""
        if self.reasoning_started is None or self.reasoning_ended is None:
            return None
        return round((self.reasoning_ended - self.reasoning_started) * 1000, 1)

    def time_to_first_token(self) -> float | None:
        """Seconds from the start to the first token; None before it."""
        return None if self.first_token is None else self.first_token - self.started

    def tokens_per_second(self) -> float | None:
        """Decode speed: the tokens after the first, over the time after the first."""
        if self.first_token is None or self.ended is None or self.tokens < 2:
            return None
        seconds = self.ended - self.first_token
        return (self.tokens - 1) / seconds if seconds > 0 else None

    def meta(self, settings: ChatSettings) -> MessageMeta:
        """The reply's figures and settings as stored (times in milliseconds)."""
        ttft = self.time_to_first_token()
        return MessageMeta(
            model=settings.model,
            parameters=settings.parameters(),
            seed=settings.seed,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.tokens,
            time_to_first_token_ms=None if ttft is None else round(ttft * 1000, 1),
            tokens_per_second=self.tokens_per_second(),
            duration_ms=None
            if self.ended is None
            else round((self.ended - self.started) * 1000, 1),
            reasoning_ms=self.reasoning_ms(),
            draft_tokens=self.speculation.drafted if self.speculation else None,
            accepted_tokens=self.speculation.accepted if self.speculation else None,
            decode_steps=self.speculation.steps if self.speculation else None,
        )


def token_choice(lp: TokenLogprob) -> TokenChoice:
    """A token's logprobs as stored, with its bytes only where its text cannot show them."""
    raw = lp.token_bytes if lp.token_bytes not in (None, lp.token.encode()) else None
    escaped = any(b != t.encode() for b, (t, _) in zip(lp.top_bytes, lp.top, strict=False))
    top_raw = list(lp.top_bytes) if escaped and len(lp.top_bytes) == len(lp.top) else []
    return TokenChoice(lp.token, lp.logprob, [(t, p) for t, p in lp.top], raw, top_raw)


class ChatJob(Job):
    """One reply, stored as a message whose id is the job's. As text arrives, Markdown blocks
    that are finished go out once as `block` events (appended), the open last block as `tail`
    (replacing the last), and reasoning, escaped, as `reasoning` events (appended); then
    `done`. The finished reply is written to the store, its reasoning with it."""

    def __init__(
        self,
        render: Render,
        handle: ModelHandle,
        settings: ChatSettings,
        request: ChatRequest,
        store: Database | None = None,
        conversation: str = "",
        message_id: str | None = None,
        prefix: str = "",
        prefix_tokens: list[TokenChoice] | None = None,
    ) -> None:
        super().__init__(render, message_id)
        self.handle = handle
        self.settings = settings
        self.request = request
        self.store = store
        self.conversation = conversation
        self.prefix = prefix
        self.prefix_tokens = list(prefix_tokens or [])
        self.reply = Fold()  # what the model has written so far, after the prefix
        self.markdown = StreamingMarkdown()
        self.unshown = ""  # text not rendered yet: it waits for SHOW_EVERY to pass
        self.unshown_reasoning = ""  # the same for reasoning
        self.shown_at = -SHOW_EVERY
        self.show_later: asyncio.TimerHandle | None = None
        self.stats = ReplyStats()
        self.error: str | None = None
        self.stored: Step | None = None
        self.digest: asyncio.Future[str | None] | None = None

    async def work(self) -> None:
        self.stats.started = time.perf_counter()
        if self.store is not None:  # the model file's digest, for the run card
            self.digest = reading_digest(self.handle.spec)
        if self.prefix:  # a branch from a token: the reply so far comes first
            self.show(self.prefix)
        try:
            async for delta in self.handle.generate_stream(Capability.CHAT, self.request):
                self.reply.add(delta)
                if delta.reasoning:
                    self.stats.token(reasoning=True)
                    self.show("", delta.reasoning)
                if delta.text:
                    self.stats.token(reasoning=False)
                    self.show(delta.text)
                if delta.usage is not None:
                    self.stats.prompt_tokens, self.stats.tokens = delta.usage
                    if delta.reasoning_tokens:
                        self.stats.reasoning_tokens = delta.reasoning_tokens
                    self.stats.speculation = delta.speculation
        except asyncio.CancelledError:
            if self.stop_reason is None:
                raise
        except Exception as exc:
            self.error = explain(exc)
        finally:
            self.stats.ended = time.perf_counter()
            self.render_unshown()  # what waited, so the events hold the whole reply
        try:
            # The final render colours the reply's code (about 7 ms per KB): made here, off
            # the event loop, it waits in format_reply's cache for `done`.
            await asyncio.to_thread(format_reply, self.text)
        except asyncio.CancelledError:
            if self.stop_reason is None:
                raise

    def show(self, text: str, reasoning: str = "") -> None:
        """Send `text` (and `reasoning`) to the pages now, or with what follows within
        SHOW_EVERY."""
        self.unshown += text
        self.unshown_reasoning += reasoning
        wait = self.shown_at + SHOW_EVERY - time.perf_counter()
        if wait <= 0:
            self.render_unshown()
        elif self.show_later is None:
            self.show_later = asyncio.get_running_loop().call_later(wait, self.render_unshown)

    def render_unshown(self) -> None:
        """Render what waits: reasoning as plain text, then the text's blocks it finished,
        sent once, and the open tail."""
        if self.show_later is not None:
            self.show_later.cancel()
            self.show_later = None
        if self.finished.is_set():
            return
        if self.unshown_reasoning:
            self.emit("reasoning", escape(self.unshown_reasoning))
            self.unshown_reasoning, self.shown_at = "", time.perf_counter()
        if not self.unshown:
            return
        finished, tail = self.markdown.feed(self.unshown)
        self.unshown, self.shown_at = "", time.perf_counter()
        if finished:
            self.emit("block", finished)
        self.emit("tail", tail, append=False)

    @property
    def text(self) -> str:
        return self.prefix + self.reply.text

    def meta(self) -> MessageMeta:
        meta = self.stats.meta(self.settings)
        meta.finish_reason = self.reply.finish_reason or self.stop_reason
        reasoning = "".join(self.reply.reasoning)
        if reasoning:
            meta.reasoning, meta.reasoning_tokens = reasoning, self.stats.reasoning_tokens
        meta.error = self.error
        meta.prefix = self.prefix or None
        if self.settings.top_logprobs is not None:
            meta.tokens = self.prefix_tokens + [
                token_choice(lp) for lp in self.reply.logprobs or ()
            ]
        meta.server_version = version("localoip")
        return meta

    async def save(self) -> None:
        if self.store is None:
            return
        text, meta, mid = self.text, self.meta(), self.id
        meta.digest = await (self.digest or reading_digest(self.handle.spec))

        def write(db: Connection) -> Step | None:
            conversations.finish_message(db, mid, text, meta, "done")
            found = conversations.step(db, mid)
            return None if found is None else found[1]

        self.stored = await self.store.run(write)

    async def stop(self, reason: str) -> None:
        """Stop generating and wait until the model is free again."""
        await super().stop(reason)
        if self.stored is None:  # stopped before its work began: keep the result all the same
            await self.save()
        await self.handle.idle()

    def view(self) -> ReplyView:
        if self.stored is not None:
            return ReplyView.of(self.conversation, self.stored)
        meta = self.meta()
        return ReplyView(
            id=self.id,
            model=self.handle.name,
            text=self.text,
            finish_reason="error" if self.error else meta.finish_reason,
            error=self.error,
            figures=figures(meta),
            settings=self.settings.summary(),
            conversation=self.conversation,
            reasoning=meta.reasoning or "",
            reasoning_words=reasoning_words(meta),
        )

    def final_html(self) -> str:
        return self.render("playground/assistant_turn.html", reply=self.view())
