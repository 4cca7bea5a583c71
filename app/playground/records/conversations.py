"""The playground's conversations in the SQLite store: a tree of messages per conversation.

Editing a message or regenerating a reply adds a sibling (a message with the same parent);
nothing is deleted but a whole conversation. A conversation shows one path, from the root
to its `current` message. Functions here take a connection and run inside `Store.run`.
"""

from __future__ import annotations

import secrets
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import msgspec
from localoip.app.core.errors import InvalidInput, NotFound
from localoip.app.playground.records import arenas, chat_images
from localoip.app.playground.records.arenas import ArenaRecord
from localoip.app.playground.records.chat_images import ImageFile

FORMAT = "localoip.conversation"
IMPORT_AT_MOST_BYTES = 8 * 1024 * 1024
IMPORT_AT_MOST_MESSAGES = 5000
TITLE_AT_MOST = 200
LISTED_AT_MOST = 200

Role = Literal["user", "assistant"]
Status = Literal["done", "streaming", "interrupted"]


class TokenChoice(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    """A generated token, its natural-log probability, and the most likely alternatives as
    [token, logprob] pairs (stored as a compact JSON array). A token that ends inside a UTF-8
    character shows `\\xNN` escapes, as OpenAI's logprobs do; `raw` then holds its bytes, and
    `top_raw` the bytes of every alternative when any of them is such a token."""

    token: str
    logprob: float | None
    top: list[tuple[str, float]] = []
    raw: bytes | None = None
    top_raw: list[bytes] = []

    def bytes_of(self, alternative: int | None = None) -> bytes:
        """The bytes of the token, or of its `alternative`-th alternative."""
        if alternative is None:
            return self.token.encode() if self.raw is None else self.raw
        if self.top_raw:
            return self.top_raw[alternative]
        return self.top[alternative][0].encode()


class MessageMeta(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True):
    """What made a reply: model, parameters (system, temperature, max_tokens, seed,
    top_logprobs), token counts, timings in milliseconds, the finish reason, an error in words
    if it failed; for a run card the model file's digest and the server's version; the text
    it continued from (`prefix`, a branch from a token); its tokens with their logprobs
    when they were asked for; and what the model reasoned before the reply, with the tokens
    and the milliseconds (first reasoning token to last) it took; and, when it was decoded
    speculatively, its drafts, the drafted tokens kept and its decode steps."""

    model: str | None = None
    parameters: dict[str, Any] = {}
    seed: int | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    time_to_first_token_ms: float | None = None
    tokens_per_second: float | None = None
    duration_ms: float | None = None
    finish_reason: str | None = None
    error: str | None = None
    digest: str | None = None
    server_version: str | None = None
    prefix: str | None = None
    tokens: list[TokenChoice] | None = None
    reasoning: str | None = None
    reasoning_tokens: int | None = None
    reasoning_ms: float | None = None
    # speculative decoding: draft tokens verified and kept, and the decode steps it took
    draft_tokens: int | None = None
    accepted_tokens: int | None = None
    decode_steps: int | None = None


class Message(msgspec.Struct, forbid_unknown_fields=True):
    id: str
    parent: str | None
    role: Role
    content: str
    created_at: float
    meta: MessageMeta = msgspec.field(default_factory=MessageMeta)
    status: Status = "done"
    images: list[str] = []  # the SHA-256s of the images it carries, before its text


class ConversationFile(msgspec.Struct, forbid_unknown_fields=True):
    """A conversation as exported: every branch, the message it showed, its arenas with
    their votes (a file without `arenas` has none), and the images its messages carry."""

    format: Literal["localoip.conversation"]
    version: Literal[1]
    title: str
    created_at: float
    current: str | None
    messages: list[Message]
    arenas: list[ArenaRecord] = []
    images: list[ImageFile] = []


@dataclass(frozen=True, slots=True)
class Summary:
    id: str
    title: str
    updated_at: float


@dataclass(frozen=True, slots=True)
class Siblings:
    """Where a message sits among the messages with its parent: 1-based `index` of `count`."""

    index: int
    count: int
    previous: str | None
    next: str | None


@dataclass(frozen=True, slots=True)
class Step:
    """A message on the shown path, with its siblings."""

    message: Message
    siblings: Siblings


@dataclass(frozen=True, slots=True)
class Conversation:
    id: str
    title: str
    created_at: float
    path: list[Step]


def new_id() -> str:
    return secrets.token_urlsafe(12)


def title_from(text: str) -> str:
    """A title from a first message: its first line, shortened."""
    line = next((part.strip() for part in text.splitlines() if part.strip()), "New chat")
    return line if len(line) <= 60 else line[:59] + "…"


def _seq(db: sqlite3.Connection, cid: str) -> int:
    row = db.execute("SELECT seq FROM conversations WHERE id = ?", (cid,)).fetchone()
    if row is None:
        raise NotFound(
            f"There is no conversation “{cid}”; it may have been deleted.", "conversation"
        )
    return row[0]


def _message(row: tuple[Any, ...]) -> Message:
    mid, parent, role, content, created_at, status, meta = row
    return Message(
        mid, parent, role, content, created_at, msgspec.json.decode(meta, type=MessageMeta), status
    )


MESSAGE_COLUMNS = "id, parent, role, content, created_at, status, meta"


def _messages(db: sqlite3.Connection, seq: int) -> list[Message]:
    rows = db.execute(
        f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation = ? ORDER BY seq", (seq,)
    ).fetchall()
    found = [_message(r) for r in rows]
    carried = chat_images.of_conversation(db, seq)
    for m in found:
        m.images = carried.get(m.id, [])
    return found


def create(db: sqlite3.Connection, title: str) -> str:
    cid = secrets.token_urlsafe(9)
    now = time.time()
    db.execute(
        "INSERT INTO conversations (id, title, created_at, updated_at) VALUES (?, ?, ?, ?)",
        (cid, title[:TITLE_AT_MOST], now, now),
    )
    return cid


def add_message(
    db: sqlite3.Connection,
    cid: str,
    parent: str | None,
    role: Role,
    content: str,
    meta: MessageMeta,
    status: Status = "done",
    mid: str | None = None,
    images: Sequence[str] = (),
) -> str:
    """A new message under `parent` (None: a new root), which becomes the one shown;
    carrying `images`, kept images' SHA-256s (chat_images.keep)."""
    seq = _seq(db, cid)
    if parent is not None and not _belongs(db, seq, parent):
        raise NotFound(f"There is no message “{parent}” in this conversation.", "message")
    mid = mid or new_id()
    now = time.time()
    db.execute(
        f"INSERT INTO messages (conversation, {MESSAGE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (seq, mid, parent, role, content, now, status, msgspec.json.encode(meta).decode()),
    )
    chat_images.link(db, mid, images)
    db.execute(
        "UPDATE conversations SET current = ?, updated_at = ? WHERE seq = ?", (mid, now, seq)
    )
    return mid


def _belongs(db: sqlite3.Connection, seq: int, mid: str) -> bool:
    row = db.execute(
        "SELECT 1 FROM messages WHERE conversation = ? AND id = ?", (seq, mid)
    ).fetchone()
    return row is not None


def finish_message(
    db: sqlite3.Connection, mid: str, content: str, meta: MessageMeta, status: Status
) -> None:
    db.execute(
        "UPDATE messages SET content = ?, meta = ?, status = ? WHERE id = ?",
        (content, msgspec.json.encode(meta).decode(), status, mid),
    )


def in_conversation(db: sqlite3.Connection, cid: str, mid: str) -> Message:
    """Message `mid` of conversation `cid`; NotFound (404) if it has none such."""
    row = db.execute(
        f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE conversation = ? AND id = ?",
        (_seq(db, cid), mid),
    ).fetchone()
    if row is None:
        raise NotFound(f"There is no message “{mid}” in this conversation.", "message")
    found = _message(row)
    found.images = [
        r[0]
        for r in db.execute(
            "SELECT image FROM message_images WHERE message = ? ORDER BY position", (mid,)
        )
    ]
    return found


def images_of(db: sqlite3.Connection, path: list[Step]) -> dict[str, ImageFile]:
    """The images the messages of `path` carry, by SHA-256."""
    return chat_images.files(db, (h for s in path for h in s.message.images))


def step(db: sqlite3.Connection, mid: str) -> tuple[str, Step] | None:
    """Message `mid` with its siblings, and the id of its conversation; None if unknown."""
    row = db.execute(
        "SELECT c.id, m.conversation FROM messages m JOIN conversations c"
        " ON c.seq = m.conversation WHERE m.id = ?",
        (mid,),
    ).fetchone()
    if row is None:
        return None
    return row[0], shown_path(_messages(db, row[1]), mid)[-1]


def path_to(db: sqlite3.Connection, cid: str, mid: str) -> list[Step]:
    """The path from the root to message `mid`."""
    in_conversation(db, cid, mid)
    return shown_path(_messages(db, _seq(db, cid)), mid)


def shown_path(messages: list[Message], current: str | None) -> list[Step]:
    """The path from the root to `current`, each step with its siblings (in creation order)."""
    by_id = {m.id: m for m in messages}
    children: dict[str | None, list[str]] = {}
    for m in messages:
        children.setdefault(m.parent, []).append(m.id)
    path: list[Step] = []
    mid = current if current in by_id else None
    while mid is not None:
        here = by_id[mid]
        family = children[here.parent]
        i = family.index(mid)
        siblings = Siblings(
            i + 1,
            len(family),
            family[i - 1] if i > 0 else None,
            family[i + 1] if i + 1 < len(family) else None,
        )
        path.append(Step(here, siblings))
        mid = here.parent
    return path[::-1]


def latest_leaf(messages: list[Message], mid: str) -> str:
    """From `mid`, down through the newest child at each step, to a message with none."""
    newest: dict[str | None, str] = {}
    for m in messages:
        newest[m.parent] = m.id  # creation order: the last one seen is the newest
    while mid in newest:
        mid = newest[mid]
    return mid


def read(db: sqlite3.Connection, cid: str) -> Conversation:
    seq = _seq(db, cid)
    title, created_at, current = db.execute(
        "SELECT title, created_at, current FROM conversations WHERE seq = ?", (seq,)
    ).fetchone()
    return Conversation(cid, title, created_at, shown_path(_messages(db, seq), current))


def show(db: sqlite3.Connection, cid: str, mid: str) -> None:
    """Show the branch through `mid`: down to its newest reply."""
    seq = _seq(db, cid)
    messages = _messages(db, seq)
    if all(m.id != mid for m in messages):
        raise NotFound(f"There is no message “{mid}” in this conversation.", "message")
    db.execute(
        "UPDATE conversations SET current = ? WHERE seq = ?", (latest_leaf(messages, mid), seq)
    )


def rename(db: sqlite3.Connection, cid: str, title: str) -> None:
    title = " ".join(title.split())
    if not title:
        raise InvalidInput("A title cannot be empty.", "title")
    if len(title) > TITLE_AT_MOST:
        raise InvalidInput(f"A title has at most {TITLE_AT_MOST} characters.", "title")
    db.execute("UPDATE conversations SET title = ? WHERE seq = ?", (title, _seq(db, cid)))


def delete(db: sqlite3.Connection, cid: str) -> None:
    """Delete the conversation, its messages, and the images no other message carries."""
    db.execute("DELETE FROM conversations WHERE seq = ?", (_seq(db, cid),))
    chat_images.forget_unused(db)


def listed(db: sqlite3.Connection, query: str = "") -> list[Summary]:
    """Conversations, the latest changed first; with a query, those whose title or any
    message contains it (case-insensitive for ASCII letters)."""
    sql = "SELECT id, title, updated_at FROM conversations c"
    args: list[Any] = []
    if query.strip():
        pattern = "%" + query.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        sql += (
            " WHERE c.title LIKE ? ESCAPE '\\' OR EXISTS (SELECT 1 FROM messages m"
            " WHERE m.conversation = c.seq AND m.content LIKE ? ESCAPE '\\')"
        )
        args = [pattern + "%", pattern + "%"]
    sql += " ORDER BY updated_at DESC, seq DESC LIMIT ?"
    return [Summary(*row) for row in db.execute(sql, (*args, LISTED_AT_MOST)).fetchall()]


def export(db: sqlite3.Connection, cid: str) -> ConversationFile:
    seq = _seq(db, cid)
    title, created_at, current = db.execute(
        "SELECT title, created_at, current FROM conversations WHERE seq = ?", (seq,)
    ).fetchone()
    kept = [arenas.record(a) for a in arenas.of_conversation(db, cid)]
    messages = _messages(db, seq)
    images = chat_images.files(db, (h for m in messages for h in m.images))
    listed = sorted(images.values(), key=lambda image: image.sha256)
    return ConversationFile(FORMAT, 1, title, created_at, current, messages, kept, listed)


def parse_file(data: bytes) -> ConversationFile:
    """An exported conversation, checked: InvalidInput says what is wrong and where."""
    if len(data) > IMPORT_AT_MOST_BYTES:
        raise InvalidInput(
            f"The file is {len(data)} bytes; an import takes at most {IMPORT_AT_MOST_BYTES}.",
            "file",
        )
    try:
        found = msgspec.json.decode(data, type=ConversationFile)
    except msgspec.DecodeError as exc:
        raise InvalidInput(f"This is not a localoip conversation file: {exc}.", "file") from None
    if len(found.messages) > IMPORT_AT_MOST_MESSAGES:
        raise InvalidInput(
            f"The file has {len(found.messages)} messages; an import takes at most "
            f"{IMPORT_AT_MOST_MESSAGES}.",
            "file",
        )
    chat_images.check_file(found.images, [m.images for m in found.messages])
    seen: set[str] = set()
    for i, m in enumerate(found.messages):
        if m.id in seen:
            raise InvalidInput(f"messages[{i}]: the id “{m.id}” is used twice.", "file")
        if m.parent is not None and m.parent not in seen:
            raise InvalidInput(
                f"messages[{i}]: its parent “{m.parent}” is not an earlier message.", "file"
            )
        seen.add(m.id)
    if found.current is not None and found.current not in seen:
        raise InvalidInput(f"current: there is no message “{found.current}”.", "file")
    replies = {m.id for m in found.messages if m.role == "assistant"}
    if len(found.arenas) > len(replies):
        raise InvalidInput("The file has more arenas than replies.", "file")
    for i, kept in enumerate(found.arenas):
        arenas.check_record(kept, replies, f"arenas[{i}]")
    return found


def import_file(db: sqlite3.Connection, found: ConversationFile) -> str:
    """A new conversation from a checked file, with new ids (an import never overwrites)."""
    cid = create(db, " ".join(found.title.split()) or "Imported chat")
    ids = {m.id: new_id() for m in found.messages}
    for image in found.images:
        chat_images.keep(db, image)
    for m in found.messages:
        status = "interrupted" if m.status == "streaming" else m.status
        parent = ids.get(m.parent or "")
        add_message(db, cid, parent, m.role, m.content, m.meta, status, ids[m.id], m.images)
    current = ids.get(found.current or "")
    db.execute("UPDATE conversations SET current = ? WHERE id = ?", (current, cid))
    for kept in found.arenas:
        arenas.restore(db, cid, kept, ids)
    return cid
