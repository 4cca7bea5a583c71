"""The playground's routes: the page at /, htmx partials under /ui/, errors as HTML."""

from __future__ import annotations

import re
from importlib.metadata import version

from litestar import Controller, Request, Response, get
from litestar.connection import ASGIConnection
from litestar.di import Provide
from litestar.exceptions import PermissionDeniedException
from litestar.handlers import BaseRouteHandler
from litestar.params import Parameter
from litestar.response import Template
from litestar_htmx import HTMXRequest, HTMXTemplate
from localoip.app.core.registry import Registry
from localoip.app.core.store import Database
from localoip.app.http.edge.media_types import FORM, MULTIPART, body_types
from localoip.app.http.edge.session import Sessions
from localoip.app.http.errors import status_of
from localoip.app.http.mount import mounted
from localoip.app.playground.arena import ArenaController, arena_view, first_columns
from localoip.app.playground.attachments import ChatImagesController
from localoip.app.playground.chat import ChatController
from localoip.app.playground.conversation_view import Thread, thread
from localoip.app.playground.embeddings import EmbeddingsController
from localoip.app.playground.images import ImagesController, as_shown, placeholders
from localoip.app.playground.inspector import InspectorController
from localoip.app.playground.jobs import Jobs
from localoip.app.playground.messages import explain
from localoip.app.playground.models import (
    ModelActions,
    ModelsController,
    busy,
    choices,
    rows,
    signature,
)
from localoip.app.playground.records import arenas, conversations, image_results, transcripts
from localoip.app.playground.runcards import RunCardController
from localoip.app.playground.speech import SpeechController, SpeechJob
from localoip.app.playground.templates import CONTENT_SECURITY_POLICY
from localoip.app.playground.threads import ThreadsController
from localoip.runtimes.capabilities import Capability

EXAMPLE_SENTENCES = (
    "A cat sits on the mat.",
    "A kitten is resting on a rug.",
    "The stock market fell sharply today.",
    "Shares dropped at the opening bell.",
    "I like my coffee black.",
)

ERROR_SLOT = re.compile(r"#[a-z][a-z0-9-]*")
"""The id, sent by a panel in X-Playground-Errors, of the place its errors are shown."""


class PageController(Controller):
    @get("/")
    async def page(
        self,
        registry: Registry,
        actions: ModelActions,
        sessions: Sessions | None,
        store: Database,
        jobs: Jobs,
        c: str = Parameter(default="", max_length=100),
        arena: str = Parameter(default="", max_length=100),
    ) -> Template:
        """The playground; `c` names the conversation the Chat tab opens with, `arena` the
        arena the Arena tab shows (else the latest). NotFound (404) for an unknown id."""
        shown = await thread(store, jobs, c) if c else Thread()
        listed = await store.run(lambda db: conversations.listed(db))
        images_made = await store.run(lambda db: image_results.recent(db))
        transcribed = await store.run(lambda db: transcripts.recent(db))
        last_arena = await store.run(
            lambda db: arenas.get(db, arena) if arena else arenas.latest(db)
        )
        table = rows(registry, actions)
        chat_models = choices(registry, Capability.CHAT)
        image_models = choices(registry, Capability.IMAGE)
        chosen = next((c.name for c in image_models if c.selected), None)
        return Template(
            template_name="playground/page.html",
            headers={"content-security-policy": CONTENT_SECURITY_POLICY},
            context={
                "version": version("localoip"),
                "chat_models": chat_models,
                "arena_columns": first_columns(chat_models),
                "image_models": image_models,
                "embed_models": choices(registry, Capability.EMBED),
                "image_defaults": placeholders(
                    registry.models[chosen].spec.options if chosen else None
                ),
                "sentences": "\n".join(EXAMPLE_SENTENCES),
                "rows": table,
                "signature": signature(table),
                "busy": busy(table),
                "sign_out": sessions is not None,
                "thread": shown,
                "conversations": listed,
                "open_id": shown.id,
                "query": "",
                "image_history": as_shown(jobs, images_made),
                "speech_models": choices(registry, Capability.TRANSCRIBE),
                "speech_history": as_shown(jobs, transcribed, SpeechJob),
                "arena": None if last_arena is None else await arena_view(store, jobs, last_arena),
            },
        )


async def page_only(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    """Actions must come from the page's htmx, whose header a cross-site form cannot send."""
    if connection.scope["method"] == "POST" and connection.headers.get("hx-request") != "true":
        raise PermissionDeniedException("The playground accepts actions from its own page only")


def ui_error(request: Request, exc: Exception) -> Response:
    """Any error, as words in the panel's error area (or as a small page outside htmx)."""
    message = explain(exc)
    if request.headers.get("hx-request") != "true":
        return Template(
            template_name="playground/error_page.html",
            context={"message": message},
            status_code=status_of(exc),
        )
    slot = request.headers.get("x-playground-errors", "")
    target = slot if ERROR_SLOT.fullmatch(slot) else None
    return HTMXTemplate(
        template_name="playground/error.html",
        context={"message": message},
        status_code=status_of(exc),
        re_target=target,
        re_swap="innerHTML" if target else None,
    )


def ui_routes() -> list[type[Controller]]:
    """Everything the page calls; the running jobs and model actions live here."""
    jobs = Jobs()
    actions = ModelActions()
    return mounted(
        [
            PageController,
            ChatController,
            ChatImagesController,
            ThreadsController,
            ImagesController,
            SpeechController,
            ArenaController,
            EmbeddingsController,
            ModelsController,
            InspectorController,
            RunCardController,
        ],
        dependencies={
            "jobs": Provide(lambda: jobs, use_cache=True, sync_to_thread=False),
            "actions": Provide(lambda: actions, use_cache=True, sync_to_thread=False),
        },
        exception_handlers={Exception: ui_error},
        # the page's htmx posts forms (multipart when they carry files), under page_only's
        # check: a cross-site page can send either, but not the HX-Request header
        opt=body_types(FORM, MULTIPART),
        guards=[page_only],
        request_class=HTMXRequest,
        include_in_schema=False,
    )
