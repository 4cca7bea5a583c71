"""The OpenAI API's stored objects in the server's database: Responses with their input items,
and stored chat completions with their request messages (tables in tables.py), read in cursor
pages."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any, Literal

import msgspec
from localoip.app.core.errors import InvalidInput
from localoip.app.core.store import Database


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


def _page(
    db: sqlite3.Connection, child: str, parent_column: str, parent: int, page: Page
) -> tuple[list[Any], bool]:
    """One page of a parent's child rows, by position; has_more tells if more follow."""
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
            return (
                None if seq is None else _page(self._db(), "response_items", "response", seq, page)
            )

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
            return _page(self._db(), "chat_messages", "completion", row[0], page)

        return await self._run(messages)


class OpenAIStore(StoredResponses, StoredCompletions):
    """The server's one database, with the OpenAI API's stored objects over it (the
    playground's records use the same database through `Database.run`)."""
