"""The playground's image results in the SQLite store (tables `image_jobs` and `pictures`), so
they outlive a reload and a restart as chat replies do. Functions take a connection and run
inside `Store.run`; only the newest KEEP_AT_MOST results are kept."""

from __future__ import annotations

import secrets
import sqlite3
import time
from typing import Any, Literal

import msgspec
from localoip.app.playground.records.kept_results import KeptResults
from localoip.runtimes.capabilities import ImageRequest

KEEP_AT_MOST = 100
"""Results kept; a new one deletes the oldest beyond this, pictures and all."""
LISTED_AT_MOST = 12
"""Results the Images tab shows when it opens."""

Status = Literal["running", "done", "stopped", "failed", "interrupted"]


class PictureFacts(msgspec.Struct, frozen=True):
    """One stored picture: the URL the page shows it at, its seed and size in pixels."""

    id: str
    seed: int
    width: int
    height: int

    @property
    def url(self) -> str:
        return f"/ui/images/files/{self.id}.png"


class ImageResult(msgspec.Struct):
    """A generation as the Images tab shows it. `parameters` are the form's (n, size, steps,
    seed, negative_prompt: those given); `label` names a cell of an arena grid ("seed 3").
    For its run card: `ran` is the request the model was given, the model's defaults filled
    in; `digest` the model file's and `server_version` the server's when it was made."""

    id: str
    model: str
    prompt: str
    parameters: dict[str, Any] = {}
    label: str = ""
    status: Status = "running"
    error: str | None = None
    step: int = 0
    total: int = 0
    pictures: list[PictureFacts] = []
    created_at: float = 0.0
    ran: ImageRequest | None = None
    digest: str | None = None
    server_version: str | None = None


def new_id() -> str:
    return secrets.token_urlsafe(12)


def add(db: sqlite3.Connection, result: ImageResult, arena: str | None = None) -> None:
    """A result whose job has just started (status running); the oldest beyond KEEP_AT_MOST go."""
    result.created_at = time.time()
    db.execute(
        "INSERT INTO image_jobs (id, created_at, arena, body, status) VALUES (?, ?, ?, ?, ?)",
        (result.id, result.created_at, arena, msgspec.json.encode(result), result.status),
    )
    ROWS.trim(db, KEEP_AT_MOST)


def finish(db: sqlite3.Connection, result: ImageResult, pngs: list[tuple[int, bytes]]) -> None:
    """The job's end: its status, error and steps, and its pictures as (seed, PNG) pairs,
    whose facts are added to `result`. A result deleted meanwhile stays deleted."""
    row = db.execute("SELECT seq FROM image_jobs WHERE id = ?", (result.id,)).fetchone()
    if row is None:
        return
    for position, (seed, png) in enumerate(pngs):
        pid = secrets.token_urlsafe(16)
        db.execute(
            "INSERT INTO pictures (id, job, position, seed, png) VALUES (?, ?, ?, ?, ?)",
            (pid, row[0], position, seed, png),
        )
        result.pictures.append(PictureFacts(pid, seed, *png_size(png)))
    db.execute(
        "UPDATE image_jobs SET body = ?, status = ? WHERE seq = ?",
        (msgspec.json.encode(result), result.status, row[0]),
    )


ROWS = KeptResults(
    "image_jobs", ImageResult, "There are no images “{id}”; they may have been deleted."
)
get, found = ROWS.get, ROWS.found


def recent(db: sqlite3.Connection, limit: int = LISTED_AT_MOST) -> list[ImageResult]:
    """The newest results made on the Images tab (not in an arena), newest first."""
    return ROWS.recent(db, limit, "arena IS NULL")


def png(db: sqlite3.Connection, pid: str) -> bytes | None:
    row = db.execute("SELECT png FROM pictures WHERE id = ?", (pid,)).fetchone()
    return None if row is None else bytes(row[0])


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's header chunk."""
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
