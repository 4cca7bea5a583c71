"""The playground's arenas in the SQLite store (table `arenas`): one prompt to several models or
settings side by side, and the blind vote on them. A text arena is a conversation whose replies
are siblings of one message, so it is deleted with its conversation; an image grid points at
its stored image results. Functions take a connection and run inside `Store.run`."""

from __future__ import annotations

import secrets
import sqlite3
import time
from typing import Literal

import msgspec
from localoip.app.core.errors import Conflict, InvalidInput, NotFound

TIE = "tie"
LETTERS = "ABCDEF"
"""What a column is called while its label is hidden: A for the first, and so on."""


class Column(msgspec.Struct, frozen=True):
    """One side: the id of its reply (a message) or of its image result, and what made it
    ("tiny-chat · temperature 0.2", "seed 3")."""

    id: str
    label: str


class Arena(msgspec.Struct):
    """An arena. `seed` is the one every column used; `axis` is what an image grid varies
    ("seed" or "steps"). `vote` is the id of the chosen column, or "tie"; `revealed` tells
    whether a blind arena shows its labels yet (a vote reveals them)."""

    id: str
    kind: Literal["chat", "images"]
    prompt: str
    seed: int
    columns: list[Column]
    blind: bool = False
    axis: str = ""
    conversation: str | None = None
    created_at: float = 0.0
    vote: str | None = None
    revealed: bool = False

    @property
    def hidden(self) -> bool:
        """Whether the labels are still hidden from the voter."""
        return self.blind and not self.revealed

    def letters(self) -> dict[str, str]:
        """Each column's id and the letter it goes by."""
        return {column.id: LETTERS[i] for i, column in enumerate(self.columns)}


class _Body(msgspec.Struct):
    """What the `body` column holds: the arena without the fields that have columns."""

    kind: Literal["chat", "images"]
    prompt: str
    seed: int
    columns: list[Column]
    blind: bool
    axis: str


class ArenaRecord(msgspec.Struct, forbid_unknown_fields=True):
    """A text arena as a conversation file keeps it: the columns (reply ids and labels), the
    locked seed, whether it is blind, the vote (a column's id or "tie") and whether the labels
    were revealed."""

    prompt: str
    seed: int
    columns: list[Column]
    blind: bool = False
    vote: str | None = None
    revealed: bool = False


def new_id() -> str:
    return secrets.token_urlsafe(9)


def add(db: sqlite3.Connection, arena: Arena) -> None:
    """Keep a new arena (its vote and revealed too, for one imported with them)."""
    arena.created_at = time.time()
    body = _Body(arena.kind, arena.prompt, arena.seed, arena.columns, arena.blind, arena.axis)
    db.execute(
        "INSERT INTO arenas (id, created_at, conversation, body, vote, revealed) VALUES "
        "(?, ?, (SELECT seq FROM conversations WHERE id = ?), ?, ?, ?)",
        (
            arena.id,
            arena.created_at,
            arena.conversation,
            msgspec.json.encode(body),
            arena.vote,
            int(arena.revealed),
        ),
    )


COLUMNS = (
    "a.id, a.created_at, c.id, a.body, a.vote, a.revealed FROM arenas a "
    "LEFT JOIN conversations c ON c.seq = a.conversation"
)


def _arena(row: tuple[str, float, str | None, bytes | str, str | None, int]) -> Arena:
    aid, created_at, cid, body, vote, revealed = row
    b = msgspec.json.decode(body, type=_Body)
    return Arena(
        aid,
        b.kind,
        b.prompt,
        b.seed,
        b.columns,
        b.blind,
        b.axis,
        cid,
        created_at,
        vote,
        bool(revealed),
    )


def get(db: sqlite3.Connection, aid: str) -> Arena:
    """Arena `aid`; NotFound (404) if there is none such."""
    row = db.execute(f"SELECT {COLUMNS} WHERE a.id = ?", (aid,)).fetchone()
    if row is None:
        raise NotFound(f"There is no arena “{aid}”; it may have been deleted.", "arena")
    return _arena(row)


def of_conversation(db: sqlite3.Connection, cid: str) -> list[Arena]:
    """The text arenas whose replies are in conversation `cid`, oldest first."""
    rows = db.execute(f"SELECT {COLUMNS} WHERE c.id = ? ORDER BY a.seq", (cid,)).fetchall()
    return [_arena(row) for row in rows]


def record(arena: Arena) -> ArenaRecord:
    return ArenaRecord(
        arena.prompt, arena.seed, arena.columns, arena.blind, arena.vote, arena.revealed
    )


def restore(db: sqlite3.Connection, cid: str, kept: ArenaRecord, ids: dict[str, str]) -> None:
    """An arena from a conversation file into conversation `cid`, whose messages were given
    new ids (`ids`, old to new)."""
    columns = [Column(ids[c.id], c.label) for c in kept.columns]
    vote = ids.get(kept.vote, kept.vote) if kept.vote else None
    arena = Arena(new_id(), "chat", kept.prompt, kept.seed, columns, kept.blind, conversation=cid)
    arena.vote, arena.revealed = vote, kept.revealed
    add(db, arena)


def check_record(kept: ArenaRecord, replies: set[str], where: str) -> None:
    """InvalidInput (400), naming `where`, unless the record's columns are 2 to 4 different
    replies of the file and its vote is one of them or "tie"."""
    ids = [c.id for c in kept.columns]
    if not 2 <= len(ids) <= 4 or len(set(ids)) != len(ids):
        raise InvalidInput(f"{where}: an arena has 2 to 4 different columns.", "file")
    for column in ids:
        if column not in replies:
            raise InvalidInput(f"{where}: its column “{column}” is not a reply here.", "file")
    if kept.vote is not None and kept.vote != TIE and kept.vote not in ids:
        raise InvalidInput(f"{where}: its vote “{kept.vote}” is not one of its columns.", "file")


def latest(db: sqlite3.Connection) -> Arena | None:
    row = db.execute(f"SELECT {COLUMNS} ORDER BY a.seq DESC LIMIT 1").fetchone()
    return None if row is None else _arena(row)


def vote(db: sqlite3.Connection, aid: str, choice: str) -> Arena:
    """Keep the vote (a column's id, or "tie") and reveal the labels. InvalidInput (400) for
    a choice that names no column; Conflict (409) once a vote is kept."""
    arena = get(db, aid)
    if choice != TIE and choice not in {c.id for c in arena.columns}:
        raise InvalidInput(f"“{choice}” is not a side of this arena.", "choice")
    if arena.vote is not None:
        raise Conflict("This arena has its vote already.", "choice")
    db.execute("UPDATE arenas SET vote = ?, revealed = 1 WHERE id = ?", (choice, aid))
    arena.vote, arena.revealed = choice, True
    return arena


def reveal(db: sqlite3.Connection, aid: str) -> Arena:
    """Show a blind arena's labels without a vote."""
    arena = get(db, aid)
    db.execute("UPDATE arenas SET revealed = 1 WHERE id = ?", (aid,))
    arena.revealed = True
    return arena
