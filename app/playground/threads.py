"""The conversation sidebar: list and search, rename, delete, export and import, and moving
between sibling branches."""

from __future__ import annotations

import re
from sqlite3 import Connection

import msgspec
from litestar import Controller, Response, get, post
from litestar.params import Parameter
from litestar_htmx import ClientRedirect, HTMXRequest, HTMXTemplate
from localoip.app.core.errors import InvalidInput
from localoip.app.core.store import Database
from localoip.app.playground.conversation_view import conversation_view, thread
from localoip.app.playground.forms import text
from localoip.app.playground.jobs import Jobs
from localoip.app.playground.records import conversations, markdown


def attachment(title: str, extension: str) -> dict[str, str]:
    """A download's header, its file name made from a title: letters, digits and dashes."""
    stem = re.sub(r"[^A-Za-z0-9]+", "-", title).strip("-")[:60] or "conversation"
    return {"content-disposition": f'attachment; filename="{stem}.{extension}"'}


def parse_upload(name: str, data: str) -> conversations.ConversationFile:
    """A JSON export, or Markdown when the file's name ends in .md or it is not JSON."""
    if not data.strip():
        raise InvalidInput("Choose a file to import first.", "file")
    if name.lower().endswith((".md", ".markdown")) or not data.lstrip().startswith("{"):
        return markdown.parse_markdown(data)
    return conversations.parse_file(data.encode())


class ThreadsController(Controller):
    path = "/ui/conversations"

    @get("/")
    async def listed(
        self, store: Database, q: str = Parameter(default="", max_length=200)
    ) -> HTMXTemplate:
        """The sidebar's list; with `q`, the conversations whose title or text holds it."""
        found = await store.run(lambda db: conversations.listed(db, q))
        return HTMXTemplate(
            template_name="playground/conversation_list.html",
            context={"conversations": found, "query": q, "open_id": ""},
        )

    @post("/{cid:str}/rename", status_code=200)
    async def rename(
        self, request: HTMXRequest, store: Database, jobs: Jobs, cid: str
    ) -> HTMXTemplate:
        title = text(await request.form(), "title")
        await store.run(lambda db: conversations.rename(db, cid, title))
        return HTMXTemplate(
            template_name="playground/thread_head.html",
            context={"thread": await thread(store, jobs, cid), "oob": False},
            trigger_event="conversations-changed",
            after="settle",
        )

    @post("/{cid:str}/delete", status_code=200)
    async def delete(self, store: Database, cid: str) -> ClientRedirect:
        """Delete the conversation with all its branches; the page opens a new chat."""
        await store.run(lambda db: conversations.delete(db, cid))
        return ClientRedirect(redirect_to="/")

    @post("/{cid:str}/show/{mid:str}", status_code=200)
    async def show(
        self, request: HTMXRequest, store: Database, jobs: Jobs, cid: str, mid: str
    ) -> HTMXTemplate:
        """Show the branch through message `mid` (a sibling's arrows lead here)."""
        await store.run(lambda db: conversations.show(db, cid, mid))
        return await conversation_view(store, jobs, cid)

    @get("/{cid:str}/export.json")
    async def export_json(self, store: Database, cid: str) -> Response[bytes]:
        """Every branch, with each message's model, parameters, tokens and timings."""
        found = await store.run(lambda db: conversations.export(db, cid))
        return Response(
            msgspec.json.format(msgspec.json.encode(found), indent=2),
            media_type="application/json",
            headers=attachment(found.title, "json"),
        )

    @get("/{cid:str}/export.md")
    async def export_markdown(self, store: Database, cid: str) -> Response[str]:
        """The branch shown, as Markdown, each reply's reasoning folded before it and each
        message's images embedded before it."""

        def read(db: Connection) -> tuple[conversations.Conversation, str]:
            found = conversations.read(db, cid)
            return found, markdown.markdown(found, conversations.images_of(db, found.path))

        found, text = await store.run(read)
        return Response(
            text,
            media_type="text/markdown; charset=utf-8",
            headers=attachment(found.title, "md"),
        )

    @post("/import", status_code=200)
    async def import_(self, request: HTMXRequest, store: Database) -> ClientRedirect:
        """A conversation from an exported file (JSON or Markdown), all or nothing; the page
        opens it."""
        form = await request.form()
        found = parse_upload(text(form, "filename"), text(form, "data"))

        def add(db: Connection) -> str:
            return conversations.import_file(db, found)

        cid = await store.run(add)
        return ClientRedirect(redirect_to=f"/?c={cid}")
