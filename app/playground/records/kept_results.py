"""Results kept whole as a msgspec JSON `body` beside a `status` column, newest last by `seq`:
the Images tab's (`image_jobs`) and the Speech tab's (`transcripts`). One owner for how such a
row is read back, found or refused, listed and trimmed. Methods take a connection and run
inside `Store.run`."""

from __future__ import annotations

import sqlite3
from typing import Generic, TypeVar

import msgspec
from localoip.app.core.errors import NotFound

R = TypeVar("R", bound=msgspec.Struct)


class KeptResults(Generic[R]):
    """Rows of `table` holding `kind` Structs (each with an `id` and a `status`). `missing`
    is the NotFound message, with `{id}` for the id asked for."""

    def __init__(self, table: str, kind: type[R], missing: str) -> None:
        self.table, self.kind, self.missing = table, kind, missing

    def _read(self, body: bytes | str, status: str) -> R:
        result = msgspec.json.decode(body, type=self.kind)
        result.status = status  # type: ignore[attr-defined]  # a restart marks running ones interrupted
        return result

    def get(self, db: sqlite3.Connection, rid: str) -> R | None:
        """Result `rid`, or None."""
        query = f"SELECT body, status FROM {self.table} WHERE id = ?"
        row = db.execute(query, (rid,)).fetchone()
        return None if row is None else self._read(*row)

    def found(self, db: sqlite3.Connection, rid: str) -> R:
        """Result `rid`; NotFound (404) if there is none such."""
        result = self.get(db, rid)
        if result is None:
            raise NotFound(self.missing.format(id=rid), "job")
        return result

    def recent(self, db: sqlite3.Connection, limit: int, where: str = "TRUE") -> list[R]:
        """The newest `limit` results whose row matches the SQL condition `where`, newest
        first."""
        query = f"SELECT body, status FROM {self.table} WHERE {where} ORDER BY seq DESC LIMIT ?"
        return [self._read(*row) for row in db.execute(query, (limit,)).fetchall()]

    def trim(self, db: sqlite3.Connection, keep: int) -> None:
        """Delete all but the newest `keep` rows."""
        db.execute(
            f"DELETE FROM {self.table} WHERE seq NOT IN "
            f"(SELECT seq FROM {self.table} ORDER BY seq DESC LIMIT ?)",
            (keep,),
        )
