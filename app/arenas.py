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
from localoip.app.errors import Conflict, InvalidInput, NotFound

TIE = "tie"


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


class _Body(msgspec.Struct):
    """What the `body` column holds: the arena without the fields that have columns."""

    kind: Literal["chat", "images"]
    prompt: str
    seed: int
    columns: list[Column]
    blind: bool
    axis: str


def new_id() -> str:
    return secrets.token_urlsafe(9)


def add(db: sqlite3.Connection, arena: Arena) -> None:
    arena.created_at = time.time()
    body = _Body(arena.kind, arena.prompt, arena.seed, arena.columns, arena.blind, arena.axis)
    db.execute(
        "INSERT INTO arenas (id, created_at, conversation, body) VALUES "
        "(?, ?, (SELECT seq FROM conversations WHERE id = ?), ?)",
        (arena.id, arena.created_at, arena.conversation, msgspec.json.encode(body)),
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
