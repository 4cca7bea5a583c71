"""The SQLite store: one database file, its connection and thread, and the tables its users bring.

One connection, on one dedicated thread, so SQLite never blocks the event loop for long and
never sees two threads. Every write is one transaction (WAL mode), so a crash never leaves
half an object. Each user of the store (the OpenAI API's stored objects,
app/api/openai/{tables,records}.py; the playground's records,
app/playground/records/tables.py) hands it its `Tables`: their
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
from typing import Any, TypeVar

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
