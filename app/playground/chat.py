"""The Chat tab's routes: Send, regenerate, edit and branch from a token (each a new reply,
started with the conversation shown in one store call, then written by a job), a reply's
events, Stop, and the code for a chat."""

from __future__ import annotations

from collections.abc import Callable
from sqlite3 import Connection

from litestar import Controller, Response, get, post
from litestar.params import Parameter
from litestar.response import ServerSentEvent
from litestar_htmx import HTMXRequest, HTMXTemplate
from localoip.app.core.errors import InvalidInput
from localoip.app.core.registry import ModelHandle, Registry
from localoip.app.core.store import Database
from localoip.app.playground import snippets
from localoip.app.playground.attachments import attached, uploads
from localoip.app.playground.chat_job import ChatJob
from localoip.app.playground.chat_settings import ChatSettings
from localoip.app.playground.conversation_view import (
    Stored,
    conversation_template,
    shown,
    stored,
)
from localoip.app.playground.forms import integer, text
from localoip.app.playground.jobs import Jobs, closed, last_event_id, stream
from localoip.app.playground.messages import require_usable
from localoip.app.playground.records import chat_images, conversations
from localoip.app.playground.records.conversations import MessageMeta, TokenChoice
from localoip.app.playground.replies import ReplyView, branch_point, lost_reply
from localoip.app.playground.reply_request import ReplyRequest, history
from localoip.app.playground.templates import renderer
from localoip.runtimes.capabilities import Capability, ChatMessage

Asked = Callable[[Connection], tuple[str, str]]
"""asked(db) -> (conversation, message): adds what a reply answers, or checks it is there,
inside the store call that starts the reply."""


def ready_chat_model(registry: Registry, settings: ChatSettings) -> ModelHandle:
    """The model `settings` names, if it can chat now (see require_usable)."""
    handle = registry.get(settings.model)
    require_usable(handle, Capability.CHAT)
    return handle


async def start_reply(
    request: HTMXRequest,
    jobs: Jobs,
    store: Database,
    handle: ModelHandle,
    settings: ChatSettings,
    asked: Asked,
    prefix: str = "",
    prefix_tokens: list[TokenChoice] | None = None,
) -> HTMXTemplate:
    """A new reply and the conversation shown with it, in one store call (one transaction):
    `asked` names the conversation and the message the reply answers, the reply is added
    under it as a stored message being written, and the conversation is read as shown. Then
    a job writes the reply. With a prefix, the reply starts with it and the model continues
    from there."""
    mid = conversations.new_id()
    meta = MessageMeta(
        model=settings.model,
        parameters=settings.parameters(),
        seed=settings.seed,
        prefix=prefix or None,
    )

    def add(db: Connection) -> tuple[str, list[ChatMessage], Stored]:
        cid, parent = asked(db)
        path = conversations.path_to(db, cid, parent)
        conversations.add_message(db, cid, parent, "assistant", prefix, meta, "streaming", mid)
        return cid, history(path, conversations.images_of(db, path)), stored(db, cid)

    cid, past, found = await store.run(add)
    chat = ReplyRequest(settings, past, prefix).chat_request()
    job = ChatJob(renderer(request), handle, settings, chat, store, cid, mid, prefix, prefix_tokens)
    jobs.add(job)
    return conversation_template(shown(found, jobs))


def carried(db: Connection, cid: str) -> list[bytes]:
    """The images of conversation `cid`'s shown path, in order: a new message's reply
    reads them too."""
    path = conversations.read(db, cid).path
    found = conversations.images_of(db, path)
    return [found[sha256].data for step in path for sha256 in step.message.images]


class ChatController(Controller):
    path = "/ui/chat"

    @post("/", status_code=200)
    async def send(
        self, request: HTMXRequest, registry: Registry, jobs: Jobs, store: Database
    ) -> HTMXTemplate:
        """Add the user's message, and a reply being written, to the conversation (a new one
        if the form names none); answers with the whole conversation."""
        form = await request.form()
        settings = ChatSettings.from_form(form)
        message = text(form, "message")
        if not message.strip() and not uploads(form):
            raise InvalidInput("Type a message first.", "message")
        handle = ready_chat_model(registry, settings)
        given = text(form, "conversation")
        earlier = await store.run(lambda db: carried(db, given)) if given and uploads(form) else []
        images = await attached(form, handle, earlier)
        jobs.make_room()

        def asked(db: Connection) -> tuple[str, str]:
            cid = given or conversations.create(db, conversations.title_from(message))
            path = conversations.read(db, cid).path
            parent = path[-1].message.id if path else None
            kept = [chat_images.keep(db, image) for image in images]
            return cid, conversations.add_message(
                db, cid, parent, "user", message, MessageMeta(), images=kept
            )

        return await start_reply(request, jobs, store, handle, settings, asked)

    @post("/{cid:str}/regenerate/{mid:str}", status_code=200)
    async def regenerate(
        self,
        request: HTMXRequest,
        registry: Registry,
        jobs: Jobs,
        store: Database,
        cid: str,
        mid: str,
    ) -> HTMXTemplate:
        """A new reply beside reply `mid`, with the settings now in the form."""
        settings = ChatSettings.from_form(await request.form())
        handle = ready_chat_model(registry, settings)
        jobs.make_room()

        def asked(db: Connection) -> tuple[str, str]:
            old = conversations.in_conversation(db, cid, mid)
            if old.role != "assistant" or old.parent is None:
                raise InvalidInput("Only a reply can be regenerated.", "message")
            return cid, old.parent

        return await start_reply(request, jobs, store, handle, settings, asked)

    @post("/{cid:str}/branch/{mid:str}", status_code=200)
    async def branch(
        self,
        request: HTMXRequest,
        registry: Registry,
        jobs: Jobs,
        store: Database,
        cid: str,
        mid: str,
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
        parent = old.parent
        return await start_reply(
            request, jobs, store, handle, settings, lambda _: (cid, parent), prefix, kept
        )

    @get("/{cid:str}/edit/{mid:str}")
    async def edit_form(self, store: Database, cid: str, mid: str) -> HTMXTemplate:
        """The form that edits message `mid` in place."""
        old = await store.run(lambda db: conversations.in_conversation(db, cid, mid))
        return HTMXTemplate(
            template_name="playground/edit_form.html",
            context={"conversation": cid, "message": old},
        )

    @post("/{cid:str}/edit/{mid:str}", status_code=200)
    async def edit(
        self,
        request: HTMXRequest,
        registry: Registry,
        jobs: Jobs,
        store: Database,
        cid: str,
        mid: str,
    ) -> HTMXTemplate:
        """The edited message as a sibling of message `mid`, with its images, and a reply."""
        form = await request.form()
        settings = ChatSettings.from_form(form)
        edited = text(form, "edited")
        handle = ready_chat_model(registry, settings)
        jobs.make_room()

        def asked(db: Connection) -> tuple[str, str]:
            old = conversations.in_conversation(db, cid, mid)
            if old.role != "user":
                raise InvalidInput("Only your own messages can be edited.", "message")
            if not edited.strip() and not old.images:
                raise InvalidInput("An edited message cannot be empty.", "edited")
            return cid, conversations.add_message(
                db, cid, old.parent, "user", edited, MessageMeta(), images=old.images
            )

        return await start_reply(request, jobs, store, handle, settings, asked)

    @get("/{job_id:str}/stream")
    async def events(
        self,
        request: HTMXRequest,
        jobs: Jobs,
        store: Database,
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
        self, request: HTMXRequest, store: Database, api_key_env: str | None
    ) -> HTMXTemplate:
        """The SDK and curl code for this conversation and these settings."""
        form = await request.form()
        settings = ChatSettings.from_form(form)
        cid = text(form, "conversation")

        def read(db: Connection) -> list[ChatMessage]:
            path = conversations.read(db, cid).path
            return history(path, conversations.images_of(db, path))

        draft = text(form, "message").strip() or "Hello!"
        past = [*(await store.run(read) if cid else []), ChatMessage("user", draft)]
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
