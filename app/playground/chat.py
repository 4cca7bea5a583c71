"""The Chat tab: replies as server-side jobs streamed over SSE, Stop, edit and regenerate (as
sibling branches), and each reply's figures."""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field, replace
from importlib.metadata import version
from sqlite3 import Connection
from typing import Any

from litestar import Controller, Response, get, post
from litestar.datastructures import FormMultiDict
from litestar.params import Parameter
from litestar.response import ServerSentEvent
from litestar_htmx import HTMXRequest, HTMXTemplate
from localoip.app.core.errors import InvalidInput, NotFound
from localoip.app.core.model_digest import reading_digest
from localoip.app.core.registry import ModelHandle, Registry
from localoip.app.core.store import Store
from localoip.app.playground import snippets
from localoip.app.playground.formatting import StreamingMarkdown, format_reply
from localoip.app.playground.forms import integer, number, text
from localoip.app.playground.jobs import Job, Jobs, Render, closed, last_event_id, stream
from localoip.app.playground.messages import explain, require_ready
from localoip.app.playground.records import arenas, conversations
from localoip.app.playground.records.arenas import Arena
from localoip.app.playground.records.conversations import (
    Message,
    MessageMeta,
    Siblings,
    Step,
    TokenChoice,
)
from localoip.app.playground.reply_request import ReplyRequest
from localoip.app.playground.templates import renderer
from localoip.runtimes.capabilities import (
    Capability,
    ChatMessage,
    ChatRequest,
    Fold,
    Sampling,
    TokenLogprob,
)
from markupsafe import Markup

TOP_LOGPROBS = 5
"""Alternatives per token when token probabilities are asked for without a number."""

FINISH_WORDS = {
    "length": "reached max tokens",
    "stop": "the model finished",
    "stopped": "stopped by you",
    "time limit": "ran longer than the playground allows",
    "tool_calls": "the model called a tool",
    "error": "failed",
}


@dataclass(frozen=True, slots=True)
class ChatSettings:
    """The settings column of the Chat tab."""

    model: str
    system: str
    temperature: float | None
    max_tokens: int | None
    seed: int | None
    top_logprobs: int | None = None  # None: no token probabilities; k: k alternatives each

    @classmethod
    def from_form(cls, form: FormMultiDict) -> ChatSettings:
        model = text(form, "model")
        if not model:
            raise InvalidInput("Choose a model first.", "model")
        alternatives = integer(form, "top_logprobs", "Alternatives", 0, 20)
        return cls(
            model=model,
            system=text(form, "system").strip(),
            temperature=number(form, "temperature", "Temperature", 0.0, 2.0),
            max_tokens=integer(form, "max_tokens", "Max tokens", 1, 1 << 20),
            seed=integer(form, "seed", "Seed", 0, 2**63 - 1),
            top_logprobs=(
                (TOP_LOGPROBS if alternatives is None else alternatives)
                if text(form, "logprobs")
                else None
            ),
        )

    @classmethod
    def of(cls, meta: MessageMeta) -> ChatSettings:
        """The settings a stored reply was made with."""
        given = meta.parameters
        return cls(
            model=meta.model or "",
            system=str(given.get("system") or ""),
            temperature=given.get("temperature"),
            max_tokens=given.get("max_tokens"),
            seed=given.get("seed"),
            top_logprobs=given.get("top_logprobs"),
        )

    def sampling(self) -> Sampling:
        return Sampling(max_tokens=self.max_tokens, temperature=self.temperature, seed=self.seed)

    def api_fields(self) -> dict[str, float | int | bool | None]:
        """The settings by their /v1 names (None: not given)."""
        fields: dict[str, float | int | bool | None] = {
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
        }
        if self.top_logprobs is not None:
            fields |= {"logprobs": True, "top_logprobs": self.top_logprobs}
        return fields

    def parameters(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
            **({} if self.top_logprobs is None else {"top_logprobs": self.top_logprobs}),
        }

    def summary(self) -> list[str]:
        """The settings, as the footer of a reply shows them."""
        temperature = "default" if self.temperature is None else f"{self.temperature:g}"
        items = [
            f"temperature {temperature}",
            f"max tokens {self.max_tokens or 'default'}",
            f"seed {'random' if self.seed is None else self.seed}",
        ]
        if self.top_logprobs is not None:
            items.append(f"token probabilities (top {self.top_logprobs})")
        if self.system:
            short = self.system if len(self.system) <= 40 else self.system[:39] + "…"
            items.append(f"system prompt “{short}”")
        return items


def history(path: list[Step]) -> list[ChatMessage]:
    """The messages of a shown path, as a model reads them."""
    return [
        ChatMessage(s.message.role, s.message.content) for s in path if s.message.content.strip()
    ]


@dataclass(slots=True)
class ReplyStats:
    """Timings of one reply, from the moment its work began (waiting for the model included)."""

    started: float = 0.0
    first_token: float | None = None
    ended: float | None = None
    tokens: int = 0
    prompt_tokens: int | None = None

    def time_to_first_token(self) -> float | None:
        return None if self.first_token is None else self.first_token - self.started

    def tokens_per_second(self) -> float | None:
        """Decode speed: the tokens after the first, over the time after the first."""
        if self.first_token is None or self.ended is None or self.tokens < 2:
            return None
        seconds = self.ended - self.first_token
        return (self.tokens - 1) / seconds if seconds > 0 else None

    def meta(self, settings: ChatSettings) -> MessageMeta:
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
        )


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

    @classmethod
    def of(cls, conversation: str, step: Step) -> ReplyView:
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
        )

    def blinded(self, letter: str) -> ReplyView:
        """The reply as a blind arena's column, before the vote: called by its letter, with
        nothing that names the model or its settings (no inspector, no run card)."""
        return replace(self, model=blind_name(letter), settings=[], stored=False)

    @property
    def html(self) -> Markup:
        return format_reply(self.text)

    @property
    def finish_words(self) -> str:
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
    return [TokenView(i, t.token, probability(t.logprob)) for i, t in enumerate(tokens)]


def token_choice(lp: TokenLogprob) -> TokenChoice:
    """A token's logprobs as stored, with its bytes only where its text cannot show them."""
    raw = lp.token_bytes if lp.token_bytes not in (None, lp.token.encode()) else None
    escaped = any(b != t.encode() for b, (t, _) in zip(lp.top_bytes, lp.top, strict=False))
    top_raw = list(lp.top_bytes) if escaped and len(lp.top_bytes) == len(lp.top) else []
    return TokenChoice(lp.token, lp.logprob, [(t, p) for t, p in lp.top], raw, top_raw)


def blind_name(letter: str) -> str:
    """What a blind arena's column is called in the Chat tab until the vote."""
    return f"Column {letter}"


SHOW_EVERY = 1 / 30
"""Seconds between two renders of a streaming reply: text that comes faster is rendered and
sent together, so neither the server (Markdown, Pygments, nh3) nor the page (a swap and a
layout of the open block) works once per token. A pause sends what is waiting at once."""

INTERRUPTED = "The server stopped while this reply was being written; what arrived is kept."


def figures(meta: MessageMeta) -> list[str]:
    out = []
    if meta.time_to_first_token_ms is not None:
        out.append(f"first token {meta.time_to_first_token_ms:.0f} ms")
    if meta.tokens_per_second is not None:
        out.append(f"{meta.tokens_per_second:.1f} tokens/s")
    tokens = meta.completion_tokens or 0
    out.append(f"{tokens} token{'' if tokens == 1 else 's'}")
    return out


class ChatJob(Job):
    """One reply, stored as a message whose id is the job's. As text arrives, Markdown blocks
    that are finished go out once as `block` events (appended), the open last block as `tail`
    (replacing the last); then `done`. The finished reply is written to the store."""

    def __init__(
        self,
        render: Render,
        handle: ModelHandle,
        settings: ChatSettings,
        request: ChatRequest,
        store: Store | None = None,
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
                if delta.text:
                    if self.stats.first_token is None:
                        self.stats.first_token = time.perf_counter()
                    self.stats.tokens += 1
                    self.show(delta.text)
                if delta.usage is not None:
                    self.stats.prompt_tokens, self.stats.tokens = delta.usage
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

    def show(self, text: str) -> None:
        """Send `text` to the pages now, or with what follows within SHOW_EVERY."""
        self.unshown += text
        wait = self.shown_at + SHOW_EVERY - time.perf_counter()
        if wait <= 0:
            self.render_unshown()
        elif self.show_later is None:
            self.show_later = asyncio.get_running_loop().call_later(wait, self.render_unshown)

    def render_unshown(self) -> None:
        """Render the text waiting: blocks it finished are sent once, then the open tail."""
        if self.show_later is not None:
            self.show_later.cancel()
            self.show_later = None
        if not self.unshown or self.finished.is_set():
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
        )

    def final_html(self) -> str:
        return self.render("playground/assistant_turn.html", reply=self.view())


def lost_reply(job_id: str) -> ReplyView:
    return ReplyView(
        id=job_id,
        model="",
        text="",
        finish_reason="error",
        error="This reply is no longer available: the server restarted or has forgotten it.",
    )


@dataclass(frozen=True, slots=True)
class Turn:
    """One turn as the conversation shows it: `kind` is user, reply or streaming."""

    kind: str
    message: Message
    siblings: Siblings
    reply: ReplyView | None = None
    blind: str = ""  # a blind arena's column, before the vote: its letter
    # A streaming reply as its job has it so far: the page shows this at once and follows
    # the job's events after index `after`.
    after: int = -1
    blocks: Markup = field(default_factory=Markup)
    tail: Markup = field(default_factory=Markup)

    @property
    def who(self) -> str:
        return blind_name(self.blind) if self.blind else self.message.meta.model or "localoip"


@dataclass(frozen=True, slots=True)
class Thread:
    """A conversation as the Chat tab shows it; an empty id is a new chat not yet saved."""

    id: str = ""
    title: str = "New chat"
    turns: list[Turn] = field(default_factory=list)
    blind_arena: str = ""  # a blind arena of this conversation still to be voted on


async def thread(store: Store, jobs: Jobs, cid: str) -> Thread:
    """Conversation `cid` as shown: replies still being written follow their jobs; the
    columns of a blind arena not yet voted on go by their letters, as in the Arena tab."""

    def read(db: Connection) -> tuple[conversations.Conversation, list[Arena]]:
        hidden = [a for a in arenas.of_conversation(db, cid) if a.hidden]
        return conversations.read(db, cid), hidden

    found, hidden = await store.run(read)
    letters = {mid: letter for arena in hidden for mid, letter in arena.letters().items()}
    turns = []
    for step in found.path:
        m = step.message
        blind = letters.get(m.id, "")
        if m.role == "user":
            turns.append(Turn("user", m, step.siblings))
        elif m.status == "streaming" and (job := jobs.get(m.id, ChatJob)) is not None:
            after, html = job.shown()
            turns.append(
                Turn(
                    "streaming",
                    m,
                    step.siblings,
                    blind=blind,
                    after=after,
                    blocks=Markup(html.get("block", "")),
                    tail=Markup(html.get("tail", "")),
                )
            )
        else:
            reply = ReplyView.of(cid, step)
            turns.append(Turn("reply", m, step.siblings, reply.blinded(blind) if blind else reply))
    return Thread(cid, found.title, turns, hidden[-1].id if hidden else "")


async def conversation_view(
    request: HTMXRequest, store: Store, jobs: Jobs, cid: str
) -> HTMXTemplate:
    """The conversation's turns for #conversation, its head out of band, and an event that
    tells the page (and its sidebar) which conversation is open."""
    shown = await thread(store, jobs, cid)
    return HTMXTemplate(
        template_name="playground/conversation.html",
        context={"thread": shown, "oob": True},
        trigger_event="conversation-opened",
        params={"id": cid},
        after="settle",
    )


async def start_reply(
    request: HTMXRequest,
    jobs: Jobs,
    store: Store,
    handle: ModelHandle,
    settings: ChatSettings,
    cid: str,
    parent: str,
    prefix: str = "",
    prefix_tokens: list[TokenChoice] | None = None,
) -> None:
    """A new reply to the message `parent`: a stored message being written by a job. With a
    prefix, the reply starts with it and the model continues from there."""
    path = await store.run(lambda db: conversations.path_to(db, cid, parent))
    chat = ReplyRequest(settings, history(path), prefix).chat_request()
    mid = conversations.new_id()
    meta = MessageMeta(
        model=settings.model,
        parameters=settings.parameters(),
        seed=settings.seed,
        prefix=prefix or None,
    )
    await store.run(
        lambda db: conversations.add_message(
            db, cid, parent, "assistant", prefix, meta, "streaming", mid
        )
    )
    job = ChatJob(renderer(request), handle, settings, chat, store, cid, mid, prefix, prefix_tokens)
    jobs.add(job)


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


def ready_chat_model(registry: Registry, settings: ChatSettings) -> ModelHandle:
    handle = registry.get(settings.model)
    require_ready(handle, Capability.CHAT)
    return handle


class ChatController(Controller):
    path = "/ui/chat"

    @post("/", status_code=200)
    async def send(
        self, request: HTMXRequest, registry: Registry, jobs: Jobs, store: Store
    ) -> HTMXTemplate:
        """Add the user's message, and a reply being written, to the conversation (a new one
        if the form names none); answers with the whole conversation."""
        form = await request.form()
        settings = ChatSettings.from_form(form)
        message = text(form, "message")
        if not message.strip():
            raise InvalidInput("Type a message first.", "message")
        handle = ready_chat_model(registry, settings)
        jobs.make_room()
        cid = text(form, "conversation")

        def add(db: Connection) -> tuple[str, str]:
            nonlocal cid
            if not cid:
                cid = conversations.create(db, conversations.title_from(message))
            path = conversations.read(db, cid).path
            parent = path[-1].message.id if path else None
            return cid, conversations.add_message(db, cid, parent, "user", message, MessageMeta())

        cid, user = await store.run(add)
        await start_reply(request, jobs, store, handle, settings, cid, user)
        return await conversation_view(request, store, jobs, cid)

    @post("/{cid:str}/regenerate/{mid:str}", status_code=200)
    async def regenerate(
        self, request: HTMXRequest, registry: Registry, jobs: Jobs, store: Store, cid: str, mid: str
    ) -> HTMXTemplate:
        """A new reply beside reply `mid`, with the settings now in the form."""
        settings = ChatSettings.from_form(await request.form())
        handle = ready_chat_model(registry, settings)
        jobs.make_room()
        old = await store.run(lambda db: conversations.in_conversation(db, cid, mid))
        if old.role != "assistant" or old.parent is None:
            raise InvalidInput("Only a reply can be regenerated.", "message")
        await start_reply(request, jobs, store, handle, settings, cid, old.parent)
        return await conversation_view(request, store, jobs, cid)

    @post("/{cid:str}/branch/{mid:str}", status_code=200)
    async def branch(
        self, request: HTMXRequest, registry: Registry, jobs: Jobs, store: Store, cid: str, mid: str
    ) -> HTMXTemplate:
        """A sibling of reply `mid` that keeps its tokens before `index`, takes alternative
        `alternative` there, and lets the model go on; with the reply's own settings."""
        form = await request.form()
        index = integer(form, "index", "Token", 0, 1 << 20)
        alternative = integer(form, "alternative", "Alternative", 0, 20)
        if index is None or alternative is None:
            raise InvalidInput("Choose a token and one of its alternatives.", "index")
        old = await store.run(lambda db: conversations.in_conversation(db, cid, mid))
        if old.role != "assistant" or old.parent is None or not old.meta.tokens:
            raise InvalidInput("Only a reply with token probabilities can branch.", "message")
        prefix, kept = branch_point(old.meta, index, alternative)
        settings = ChatSettings.of(old.meta)
        handle = ready_chat_model(registry, settings)
        jobs.make_room()
        await start_reply(request, jobs, store, handle, settings, cid, old.parent, prefix, kept)
        return await conversation_view(request, store, jobs, cid)

    @get("/{cid:str}/edit/{mid:str}")
    async def edit_form(self, store: Store, cid: str, mid: str) -> HTMXTemplate:
        old = await store.run(lambda db: conversations.in_conversation(db, cid, mid))
        return HTMXTemplate(
            template_name="playground/edit_form.html",
            context={"conversation": cid, "message": old},
        )

    @post("/{cid:str}/edit/{mid:str}", status_code=200)
    async def edit(
        self, request: HTMXRequest, registry: Registry, jobs: Jobs, store: Store, cid: str, mid: str
    ) -> HTMXTemplate:
        """The edited message as a sibling of message `mid`, and a reply to it."""
        form = await request.form()
        settings = ChatSettings.from_form(form)
        edited = text(form, "edited")
        if not edited.strip():
            raise InvalidInput("An edited message cannot be empty.", "edited")
        handle = ready_chat_model(registry, settings)
        jobs.make_room()

        def add(db: Connection) -> str:
            old = conversations.in_conversation(db, cid, mid)
            if old.role != "user":
                raise InvalidInput("Only your own messages can be edited.", "message")
            return conversations.add_message(db, cid, old.parent, "user", edited, MessageMeta())

        user = await store.run(add)
        await start_reply(request, jobs, store, handle, settings, cid, user)
        return await conversation_view(request, store, jobs, cid)

    @get("/{job_id:str}/stream")
    async def events(
        self,
        request: HTMXRequest,
        jobs: Jobs,
        store: Store,
        job_id: str,
        after: str = Parameter(default="", max_length=20),
    ) -> ServerSentEvent:
        """The reply's events after Last-Event-ID if the page sends one (a reconnect), else
        after `after` (a page that came with the reply so far), else all of them."""
        after_index = last_event_id(request.headers.get("last-event-id") or after)
        job = jobs.get(job_id, ChatJob)
        if job is not None:
            return stream(job, after_index)
        found = await store.run(lambda db: conversations.step(db, job_id))
        reply = lost_reply(job_id) if found is None else ReplyView.of(*found)
        return closed(renderer(request)("playground/assistant_turn.html", reply=reply))

    @post("/stop", status_code=200)
    async def stop(self, request: HTMXRequest, jobs: Jobs) -> Response[None] | HTMXTemplate:
        """Cancel the streaming reply; answers once the model is free, with the final turn."""
        job = jobs.get(text(await request.form(), "job"), ChatJob)
        if job is None:
            return Response(None, status_code=204)
        await job.stop("stopped")
        return HTMXTemplate(
            template_name="playground/assistant_turn.html",
            context={"reply": job.view()},
            re_target=f"#turn-{job.id}",
            re_swap="outerHTML",
        )

    @post("/code", status_code=200)
    async def code(
        self, request: HTMXRequest, store: Store, api_key_env: str | None
    ) -> HTMXTemplate:
        """The SDK and curl code for this conversation and these settings."""
        form = await request.form()
        settings = ChatSettings.from_form(form)
        cid = text(form, "conversation")
        path = await store.run(lambda db: conversations.read(db, cid).path) if cid else []
        draft = text(form, "message").strip() or "Hello!"
        past = [*history(path), ChatMessage("user", draft)]
        sent = ReplyRequest(settings, past).wire_messages()
        server = str(request.base_url).rstrip("/")
        return HTMXTemplate(
            template_name="playground/code.html",
            context={
                "what": "this chat",
                "snippets": snippets.chat(
                    server, settings.model, sent, settings.api_fields(), api_key_env
                ),
            },
        )
