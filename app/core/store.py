"""The SQLite store of Responses, stored chat completions and the playground's conversations,
images and arenas.

One database file, one connection, on one dedicated thread, so SQLite never blocks the event
loop for long and never sees two threads. Every write is one transaction (WAL mode), so a
crash never leaves half an object. Rows older than the retention period are deleted at
start-up and before every call.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import msgspec
from localoip.app.core.errors import InvalidInput

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS responses_created ON responses(created_at);
CREATE TABLE IF NOT EXISTS response_items (
    response INTEGER NOT NULL REFERENCES responses(seq) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    id TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (response, position)
);
CREATE TABLE IF NOT EXISTS chat_completions (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL,
    model TEXT NOT NULL,
    metadata TEXT NOT NULL,
    request TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chat_completions_created ON chat_completions(created_at);
CREATE TABLE IF NOT EXISTS chat_messages (
    completion INTEGER NOT NULL REFERENCES chat_completions(seq) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    id TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (completion, position),
    UNIQUE (completion, id)
);
CREATE TABLE IF NOT EXISTS conversations (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    current TEXT
);
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    conversation INTEGER NOT NULL REFERENCES conversations(seq) ON DELETE CASCADE,
    parent TEXT,
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    created_at REAL NOT NULL,
    status TEXT NOT NULL,
    meta TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_conversation ON messages(conversation, parent);
CREATE TABLE IF NOT EXISTS image_jobs (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL,
    arena TEXT,
    body TEXT NOT NULL,
    status TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS pictures (
    id TEXT PRIMARY KEY,
    job INTEGER NOT NULL REFERENCES image_jobs(seq) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    seed INTEGER NOT NULL,
    png BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS pictures_job ON pictures(job);
CREATE TABLE IF NOT EXISTS arenas (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL,
    conversation INTEGER REFERENCES conversations(seq) ON DELETE CASCADE,
    body TEXT NOT NULL,
    vote TEXT,
    revealed INTEGER NOT NULL DEFAULT 0
);
"""

INTERRUPTED = {
    "code": "server_error",
    "message": "the server stopped before this response finished",
    "param": None,
    "type": "server_error",
}


def store_file(configured: str | None, config_folder: Path) -> Path:
    """`[server] store_path` (relative to the models.toml folder), else the user's data folder:
    $XDG_DATA_HOME/localoip/localoip.db, or ~/.local/share/localoip/localoip.db."""
    if configured:
        return config_folder / Path(configured).expanduser()
    data = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data) / "localoip" / "localoip.db"


@dataclass(frozen=True, slots=True)
class Page:
    """A cursor page request: items after the one with id `after`, in `order` of creation."""

    after: str | None = None
    limit: int = 20
    order: Literal["asc", "desc"] = "asc"


def _json(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def _load(text: str) -> Any:
    return msgspec.json.decode(text)


class Store:
    """Responses (with their input items) and chat completions (with their request messages);
    conversations (app/conversations.py), the playground's images (app/image_results.py) and
    arenas (app/arenas.py) through `run`. Retention applies to the first two.

    The file is created on first use; a server that never stores anything leaves no file.
    """

    def __init__(self, path: Path, retention_days: int = 30) -> None:
        self.path = path
        self.retention_days = retention_days
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="store")
        self._conn: sqlite3.Connection | None = None

    # -- the database thread ------------------------------------------------------------------

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._call, fn, args)

    def _call(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        self._purge()
        return fn(*args)

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=5000")
            conn.executescript(SCHEMA)
            self._conn = conn
        return self._conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """All of the block's statements, or none of them."""
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _purge(self) -> None:
        """Delete what is older than the retention period (0 keeps everything)."""
        if not self.retention_days or (self._conn is None and not self.path.exists()):
            return
        cutoff = time.time() - self.retention_days * 86400
        with self._transaction() as db:
            db.execute("DELETE FROM responses WHERE created_at < ?", (cutoff,))
            db.execute("DELETE FROM chat_completions WHERE created_at < ?", (cutoff,))

    def _recover(self) -> None:
        """Responses that were running when the server stopped will never finish: failed."""
        if self._conn is None and not self.path.exists():
            return
        with self._transaction() as db:
            db.execute(
                "UPDATE responses SET body = json_set(body, '$.status', 'failed', '$.error',"
                " json(?)) WHERE json_extract(body, '$.status') IN ('queued', 'in_progress')",
                (_json(INTERRUPTED),),
            )
            db.execute("UPDATE messages SET status = 'interrupted' WHERE status = 'streaming'")
            db.execute("UPDATE image_jobs SET status = 'interrupted' WHERE status = 'running'")

    async def start(self) -> None:
        """At start-up: apply retention and fail the responses a stopped server left running."""
        await self._run(self._recover)

    @asynccontextmanager
    async def lifespan(self, _: Any) -> AsyncIterator[None]:
        await self.start()
        try:
            yield
        finally:
            await self.close()

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """fn(connection) on the database thread, as one transaction."""

        def call() -> T:
            with self._transaction() as db:
                return fn(db)

        return await self._run(call)

    async def close(self) -> None:
        def close() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await asyncio.get_running_loop().run_in_executor(self._thread, close)
        self._thread.shutdown()

    def _page(
        self, child: str, parent_column: str, parent: int, page: Page
    ) -> tuple[list[Any], bool]:
        """One page of a parent's child rows, by position; has_more tells if more follow."""
        db = self._db()
        where, args = f"{parent_column} = ?", [parent]
        if page.after is not None:
            row = db.execute(
                f"SELECT position FROM {child} WHERE {parent_column} = ? AND id = ?",
                (parent, page.after),
            ).fetchone()
            if row is None:
                raise InvalidInput(f"after: no item {page.after!r} in this list", "after")
            where += " AND position > ?" if page.order == "asc" else " AND position < ?"
            args.append(row[0])
        rows = db.execute(
            f"SELECT body FROM {child} WHERE {where} ORDER BY position {page.order} LIMIT ?",
            (*args, page.limit + 1),
        ).fetchall()
        return [_load(r[0]) for r in rows[: page.limit]], len(rows) > page.limit

    # -- responses ----------------------------------------------------------------------------

    async def add_response(self, response: dict[str, Any], items: list[dict[str, Any]]) -> None:
        """A new response and its input items, in one transaction."""

        def add() -> None:
            with self._transaction() as db:
                seq = db.execute(
                    "INSERT INTO responses (id, created_at, body) VALUES (?, ?, ?)",
                    (response["id"], response["created_at"], _json(response)),
                ).lastrowid
                db.executemany(
                    "INSERT INTO response_items (response, position, id, body) VALUES (?, ?, ?, ?)",
                    [(seq, i, item["id"], _json(item)) for i, item in enumerate(items)],
                )

        await self._run(add)

    async def update_response(self, response: dict[str, Any]) -> None:
        def update() -> None:
            with self._transaction() as db:
                db.execute(
                    "UPDATE responses SET body = ? WHERE id = ?", (_json(response), response["id"])
                )

        await self._run(update)

    async def response(self, rid: str) -> dict[str, Any] | None:
        def get() -> dict[str, Any] | None:
            row = self._db().execute("SELECT body FROM responses WHERE id = ?", (rid,)).fetchone()
            return None if row is None else _load(row[0])

        return await self._run(get)

    async def delete_response(self, rid: str) -> bool:
        def delete() -> bool:
            with self._transaction() as db:
                return db.execute("DELETE FROM responses WHERE id = ?", (rid,)).rowcount > 0

        return await self._run(delete)

    def _response_seq(self, rid: str) -> int | None:
        row = self._db().execute("SELECT seq FROM responses WHERE id = ?", (rid,)).fetchone()
        return None if row is None else row[0]

    async def response_items(self, rid: str, page: Page) -> tuple[list[Any], bool] | None:
        """A page of a response's input items, or None if there is no such response."""

        def items() -> tuple[list[Any], bool] | None:
            seq = self._response_seq(rid)
            return None if seq is None else self._page("response_items", "response", seq, page)

        return await self._run(items)

    async def conversation(self, rid: str) -> tuple[dict[str, Any], list[Any]] | None:
        """A response and all its input items, read together, or None."""

        def read() -> tuple[dict[str, Any], list[Any]] | None:
            db = self._db()
            row = db.execute("SELECT seq, body FROM responses WHERE id = ?", (rid,)).fetchone()
            if row is None:
                return None
            items = db.execute(
                "SELECT body FROM response_items WHERE response = ? ORDER BY position", (row[0],)
            ).fetchall()
            return _load(row[1]), [_load(i[0]) for i in items]

        return await self._run(read)

    # -- chat completions ---------------------------------------------------------------------

    async def add_completion(
        self,
        completion: dict[str, Any],
        request: dict[str, Any],
        messages: list[dict[str, Any]],
        metadata: dict[str, str],
    ) -> None:
        """A chat completion, the request that made it and its messages, in one transaction."""

        def add() -> None:
            with self._transaction() as db:
                seq = db.execute(
                    "INSERT INTO chat_completions (id, created_at, model, metadata, request, body)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        completion["id"],
                        completion["created"],
                        completion["model"],
                        _json(metadata),
                        _json(request),
                        _json(completion),
                    ),
                ).lastrowid
                db.executemany(
                    "INSERT INTO chat_messages (completion, position, id, body)"
                    " VALUES (?, ?, ?, ?)",
                    [(seq, i, m["id"], _json(m)) for i, m in enumerate(messages)],
                )

        await self._run(add)

    @staticmethod
    def _completion(metadata: str, body: str) -> dict[str, Any]:
        return _load(body) | {"metadata": _load(metadata)}

    async def completion(self, cid: str) -> dict[str, Any] | None:
        def get() -> dict[str, Any] | None:
            row = (
                self._db()
                .execute("SELECT metadata, body FROM chat_completions WHERE id = ?", (cid,))
                .fetchone()
            )
            return None if row is None else self._completion(*row)

        return await self._run(get)

    async def completions(
        self, model: str | None, metadata: dict[str, str], page: Page
    ) -> tuple[list[dict[str, Any]], bool]:
        """A page of stored completions, by creation, filtered by model and metadata pairs."""

        def find() -> tuple[list[dict[str, Any]], bool]:
            db = self._db()
            where, args = ["1"], []
            if model is not None:
                where.append("model = ?")
                args.append(model)
            for key, value in metadata.items():
                where.append(
                    "EXISTS (SELECT 1 FROM json_each(metadata) WHERE key = ? AND value = ?)"
                )
                args += [key, value]
            if page.after is not None:
                row = db.execute(
                    "SELECT seq FROM chat_completions WHERE id = ?", (page.after,)
                ).fetchone()
                if row is None:
                    raise InvalidInput(f"after: no chat completion {page.after!r}", "after")
                where.append("seq > ?" if page.order == "asc" else "seq < ?")
                args.append(row[0])
            rows = db.execute(
                f"SELECT metadata, body FROM chat_completions WHERE {' AND '.join(where)}"
                f" ORDER BY seq {page.order} LIMIT ?",
                (*args, page.limit + 1),
            ).fetchall()
            return [self._completion(*r) for r in rows[: page.limit]], len(rows) > page.limit

        return await self._run(find)

    async def update_metadata(self, cid: str, metadata: dict[str, str]) -> dict[str, Any] | None:
        """Replace a completion's metadata; the updated completion, or None if there is none."""

        def update() -> dict[str, Any] | None:
            with self._transaction() as db:
                db.execute(
                    "UPDATE chat_completions SET metadata = ? WHERE id = ?", (_json(metadata), cid)
                )
                row = db.execute(
                    "SELECT metadata, body FROM chat_completions WHERE id = ?", (cid,)
                ).fetchone()
            return None if row is None else self._completion(*row)

        return await self._run(update)

    async def delete_completion(self, cid: str) -> bool:
        def delete() -> bool:
            with self._transaction() as db:
                return db.execute("DELETE FROM chat_completions WHERE id = ?", (cid,)).rowcount > 0

        return await self._run(delete)

    async def completion_messages(self, cid: str, page: Page) -> tuple[list[Any], bool] | None:
        """A page of a stored completion's request messages, or None if there is none."""

        def messages() -> tuple[list[Any], bool] | None:
            row = (
                self._db().execute("SELECT seq FROM chat_completions WHERE id = ?", (cid,))
            ).fetchone()
            if row is None:
                return None
            return self._page("chat_messages", "completion", row[0], page)

        return await self._run(messages)
