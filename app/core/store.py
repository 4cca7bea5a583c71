"""The SQLite store: one database file, its connection and thread, and the tables its users bring.

One connection, on one dedicated thread, so SQLite never blocks the event loop for long and
never sees two threads. Every write is one transaction (WAL mode), so a crash never leaves
half an object. Each user of the store (the OpenAI API's stored objects, app/api/openai/tables.py;
the playground's records, app/playground/records/tables.py) hands it its `Tables`: their
schema, which of them expire after the retention period (deleted at start-up and before every
call) and what to settle at start-up that a stopped server left running.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import msgspec
from localoip.app.core.errors import InvalidInput

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Tables:
    """One user's tables: `schema` creates them if missing (CREATE ... IF NOT EXISTS), run in
    the order the users are given; rows of the `expiring` tables whose `created_at` (seconds
    since the epoch) is older than the retention period are deleted; `recover(connection)`
    runs once at start-up, inside a transaction, to settle what a stopped server left running."""

    schema: str
    expiring: tuple[str, ...] = ()
    recover: Callable[[sqlite3.Connection], None] | None = None


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


class Database:
    """The database of the `tables` given: one connection on one thread, transactions,
    retention and start-up recovery. Its users' own functions run through `run`.

    The file is created on first use; a server that never stores anything leaves no file.
    """

    def __init__(self, path: Path, tables: Sequence[Tables], retention_days: int = 30) -> None:
        self.path = path
        self.tables = tuple(tables)
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
            for tables in self.tables:
                conn.executescript(tables.schema)
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
        expiring = [name for tables in self.tables for name in tables.expiring]
        if not expiring:
            return
        with self._transaction() as db:
            for name in expiring:
                db.execute(f"DELETE FROM {name} WHERE created_at < ?", (cutoff,))

    def _recover(self) -> None:
        """What was running when the server stopped will never finish: each user settles it."""
        if self._conn is None and not self.path.exists():
            return
        with self._transaction() as db:
            for tables in self.tables:
                if tables.recover is not None:
                    tables.recover(db)

    async def start(self) -> None:
        """At start-up: apply retention and settle what a stopped server left running."""
        await self._run(self._recover)

    @asynccontextmanager
    async def lifespan(self, _: Any) -> AsyncIterator[None]:
        """Litestar's lifespan: start, then close at shutdown."""
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
        """Close the connection and end the database thread."""

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


class StoredResponses(Database):
    """The OpenAI API's Responses, with their input items (tables of app/api/openai/tables.py)."""

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


class StoredCompletions(Database):
    """The OpenAI API's stored chat completions, with their request messages (tables of
    app/api/openai/tables.py)."""

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


class Store(StoredResponses, StoredCompletions):
    """The server's one store: the database, and the OpenAI API's stored objects over it."""
