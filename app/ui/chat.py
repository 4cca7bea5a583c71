"""The Chat tab: replies streamed token by token over SSE, Stop, and each reply's figures."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from litestar import Controller, Response, get, post
from litestar.datastructures import FormMultiDict
from litestar.response import ServerSentEvent
from litestar_htmx import HTMXRequest, HTMXTemplate
from localoip.app.errors import InvalidInput
from localoip.app.registry import ModelHandle, Registry
from localoip.app.ui import snippets
from localoip.app.ui.formatting import format_reply
from localoip.app.ui.forms import integer, number, text, texts
from localoip.app.ui.jobs import Job, Jobs, Render, closed, stream
from localoip.app.ui.messages import explain, require_ready
from localoip.app.ui.templates import renderer
from localoip.runtimes.base import Capability, ChatMessage, ChatRequest, Sampling
from markupsafe import Markup, escape

FINISH_WORDS = {
    "length": "reached max tokens",
    "stop": "the model finished",
    "stopped": "stopped by you",
    "disconnected": "the page went away",
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

    @classmethod
    def from_form(cls, form: FormMultiDict) -> ChatSettings:
        model = text(form, "model")
        if not model:
            raise InvalidInput("Choose a model first.", "model")
        return cls(
            model=model,
            system=text(form, "system").strip(),
            temperature=number(form, "temperature", "Temperature", 0.0, 2.0),
            max_tokens=integer(form, "max_tokens", "Max tokens", 1, 1 << 20),
            seed=integer(form, "seed", "Seed", 0, 2**63 - 1),
        )

    def sampling(self) -> Sampling:
        return Sampling(max_tokens=self.max_tokens, temperature=self.temperature, seed=self.seed)

    def api_fields(self) -> dict[str, float | int | None]:
        return {
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
        }

    def summary(self) -> list[str]:
        """The settings, as the footer of a reply shows them."""
        temperature = "default" if self.temperature is None else f"{self.temperature:g}"
        items = [
            f"temperature {temperature}",
            f"max tokens {self.max_tokens or 'default'}",
            f"seed {'random' if self.seed is None else self.seed}",
        ]
        if self.system:
            short = self.system if len(self.system) <= 40 else self.system[:39] + "…"
            items.append(f"system prompt “{short}”")
        return items


def history(form: FormMultiDict) -> list[ChatMessage]:
    """The conversation so far, as the page keeps it in hidden fields of finished turns."""
    roles = texts(form, "history_role")
    contents = texts(form, "history_content")
    return [
        ChatMessage(role, content)
        for role, content in zip(roles, contents, strict=False)
        if role in ("user", "assistant")
    ]


def messages(settings: ChatSettings, past: list[ChatMessage], message: str) -> list[ChatMessage]:
    system = [ChatMessage("system", settings.system)] if settings.system else []
    return [*system, *past, ChatMessage("user", message)]


@dataclass(slots=True)
class ReplyStats:
    """Timings of one reply, from the moment its work began (waiting for the model included)."""

    started: float = 0.0
    first_token: float | None = None
    ended: float | None = None
    tokens: int = 0

    def time_to_first_token(self) -> float | None:
        return None if self.first_token is None else self.first_token - self.started

    def tokens_per_second(self) -> float | None:
        """Decode speed: the tokens after the first, over the time after the first."""
        if self.first_token is None or self.ended is None or self.tokens < 2:
            return None
        seconds = self.ended - self.first_token
        return (self.tokens - 1) / seconds if seconds > 0 else None


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

    @property
    def html(self) -> Markup:
        return format_reply(self.text)

    @property
    def finish_words(self) -> str:
        reason = self.finish_reason or "error"
        return f"{reason} ({FINISH_WORDS[reason]})" if reason in FINISH_WORDS else reason


def figures(stats: ReplyStats) -> list[str]:
    out = []
    ttft = stats.time_to_first_token()
    if ttft is not None:
        out.append(f"first token {ttft * 1000:.0f} ms")
    speed = stats.tokens_per_second()
    if speed is not None:
        out.append(f"{speed:.1f} tokens/s")
    out.append(f"{stats.tokens} token{'' if stats.tokens == 1 else 's'}")
    return out


class ChatJob(Job):
    """One reply: deltas from the model as `token` events of escaped text, then `done`."""

    def __init__(
        self, render: Render, handle: ModelHandle, settings: ChatSettings, request: ChatRequest
    ) -> None:
        super().__init__(render)
        self.handle = handle
        self.settings = settings
        self.request = request
        self.parts: list[str] = []
        self.stats = ReplyStats()
        self.finish_reason: str | None = None
        self.error: str | None = None
        self.stop_reason: str | None = None

    async def work(self) -> None:
        self.stats.started = time.perf_counter()
        try:
            async for delta in self.handle.generate_stream(Capability.CHAT, self.request):
                if delta.text:
                    if self.stats.first_token is None:
                        self.stats.first_token = time.perf_counter()
                    self.parts.append(delta.text)
                    self.stats.tokens += 1
                    self.emit("token", str(escape(delta.text)))
                if delta.usage is not None:
                    self.stats.tokens = delta.usage[1]
                self.finish_reason = delta.finish_reason or self.finish_reason
        except asyncio.CancelledError:
            if self.stop_reason is None:
                raise
            self.finish_reason = self.stop_reason
        except Exception as exc:
            self.error = explain(exc)
        finally:
            self.stats.ended = time.perf_counter()

    async def stop(self, reason: str) -> None:
        """Stop generating and wait until the model is free again."""
        self.stop_reason = reason
        if self.task is None:
            self.finish_reason = reason
            self.finish()
        elif not self.task.done():
            self.task.cancel()
        await self.finished.wait()
        await self.handle.idle()

    def abandon(self) -> None:
        if self.task is not None and not self.task.done():
            self.stop_reason = "disconnected"
            self.task.cancel()

    def view(self) -> ReplyView:
        return ReplyView(
            id=self.id,
            model=self.handle.name,
            text="".join(self.parts),
            finish_reason="error" if self.error else self.finish_reason,
            error=self.error,
            figures=figures(self.stats),
            settings=self.settings.summary(),
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


class ChatController(Controller):
    path = "/ui/chat"

    @post("/", status_code=200)
    async def send(self, request: HTMXRequest, registry: Registry, jobs: Jobs) -> HTMXTemplate:
        """Add the user's message and a streaming reply to the conversation."""
        form = await request.form()
        settings = ChatSettings.from_form(form)
        message = text(form, "message")
        if not message.strip():
            raise InvalidInput("Type a message first.", "message")
        handle = registry.get(settings.model)
        require_ready(handle, Capability.CHAT)
        chat = ChatRequest(messages(settings, history(form), message), settings.sampling())
        job = jobs.add(ChatJob(renderer(request), handle, settings, chat))
        return HTMXTemplate(
            template_name="playground/chat_exchange.html",
            context={"message": message, "job": job},
        )

    @get("/{job_id:str}/stream")
    async def events(self, request: HTMXRequest, jobs: Jobs, job_id: str) -> ServerSentEvent:
        job = jobs.get(job_id, ChatJob)
        if job is None:
            render = renderer(request)
            return closed(render("playground/assistant_turn.html", reply=lost_reply(job_id)))
        return stream(job)

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

    @get("/clear")
    async def clear(self) -> HTMXTemplate:
        return HTMXTemplate(template_name="playground/chat_empty.html")

    @post("/code", status_code=200)
    async def code(self, request: HTMXRequest, api_key_env: str | None) -> HTMXTemplate:
        """The SDK and curl code for this conversation and these settings."""
        form = await request.form()
        settings = ChatSettings.from_form(form)
        draft = text(form, "message").strip() or "Hello!"
        sent = [
            {"role": m.role, "content": m.content or ""}
            for m in messages(settings, history(form), draft)
        ]
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
