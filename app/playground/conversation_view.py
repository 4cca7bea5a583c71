"""A conversation as the Chat tab shows it: its turns, where replies still being written follow
their jobs and the columns of a blind arena not yet voted on go by their letters."""

from __future__ import annotations

from dataclasses import dataclass, field
from sqlite3 import Connection

from litestar_htmx import HTMXTemplate
from localoip.app.core.store import Database
from localoip.app.playground.chat_job import ChatJob
from localoip.app.playground.jobs import Jobs
from localoip.app.playground.records import arenas, conversations
from localoip.app.playground.records.arenas import Arena
from localoip.app.playground.records.conversations import Message, Siblings
from localoip.app.playground.replies import ReplyView, blind_name
from markupsafe import Markup


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
    reasoning: Markup = field(default_factory=Markup)

    @property
    def who(self) -> str:
        """Who wrote the turn, as its head shows it."""
        return blind_name(self.blind) if self.blind else self.message.meta.model or "localoip"


@dataclass(frozen=True, slots=True)
class Thread:
    """A conversation as the Chat tab shows it; an empty id is a new chat not yet saved."""

    id: str = ""
    title: str = "New chat"
    turns: list[Turn] = field(default_factory=list)
    blind_arena: str = ""  # a blind arena of this conversation still to be voted on


@dataclass(frozen=True, slots=True)
class Stored:
    """What the store holds of a conversation as shown: its path, and its blind arenas still
    to be voted on."""

    conversation: conversations.Conversation
    hidden: list[Arena]


def stored(db: Connection, cid: str) -> Stored:
    """Conversation `cid` as stored (inside `Database.run`); NotFound (404) if there is none."""
    hidden = [a for a in arenas.of_conversation(db, cid) if a.hidden]
    return Stored(conversations.read(db, cid), hidden)


def shown(found: Stored, jobs: Jobs) -> Thread:
    """A stored conversation as shown now: replies still being written follow their jobs; the
    columns of a blind arena not yet voted on go by their letters, as in the Arena tab."""
    cid, hidden = found.conversation.id, found.hidden
    letters = {mid: letter for arena in hidden for mid, letter in arena.letters().items()}
    turns = []
    for step in found.conversation.path:
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
                    reasoning=Markup(html.get("reasoning", "")),
                )
            )
        else:
            reply = ReplyView.of(cid, step)
            turns.append(Turn("reply", m, step.siblings, reply.blinded(blind) if blind else reply))
    return Thread(cid, found.conversation.title, turns, hidden[-1].id if hidden else "")


async def thread(store: Database, jobs: Jobs, cid: str) -> Thread:
    """Conversation `cid` as shown, read in one store call; NotFound (404) if there is none."""
    return shown(await store.run(lambda db: stored(db, cid)), jobs)


def conversation_template(thread: Thread) -> HTMXTemplate:
    """The conversation's turns for #conversation, its head out of band, and an event that
    tells the page (and its sidebar) which conversation is open."""
    return HTMXTemplate(
        template_name="playground/conversation.html",
        context={"thread": thread, "oob": True},
        trigger_event="conversation-opened",
        params={"id": thread.id},
        after="settle",
    )


async def conversation_view(store: Database, jobs: Jobs, cid: str) -> HTMXTemplate:
    """Conversation `cid` for #conversation (see conversation_template)."""
    return conversation_template(await thread(store, jobs, cid))
