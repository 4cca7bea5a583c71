"""The Speech tab's results in the SQLite store (table `transcripts`): the audio as uploaded or
recorded, and what the model made of it, so they outlive a reload and a restart as image
results do. Functions take a connection and run inside `Store.run`; only the newest
KEEP_AT_MOST are kept."""

from __future__ import annotations

import secrets
import sqlite3
import time
from typing import Literal

import msgspec
from localoip.app.playground.records.kept_results import KeptResults

KEEP_AT_MOST = 50
"""Results kept, audio and all; a new one deletes the oldest beyond this."""
LISTED_AT_MOST = 12
"""Results the Speech tab shows when it opens."""

Status = Literal["running", "done", "stopped", "failed", "interrupted"]


class Line(msgspec.Struct, frozen=True):
    """One segment as the page shows it: seconds from the start, and its text."""

    start: float
    end: float
    text: str


class Transcript(msgspec.Struct):
    """A transcription as the Speech tab shows it. `language` is what was asked ("" to detect),
    `detected` what the model decoded in. For its run card: the audio's name, bytes and
    SHA-256, the model file's `digest` and the `server_version` when it was made."""

    id: str
    model: str
    filename: str
    audio_bytes: int
    audio_sha256: str
    media_type: str
    task: str = "transcribe"
    language: str = ""
    status: Status = "running"
    error: str | None = None
    detected: str = ""
    duration: float = 0.0
    lines: list[Line] = []
    created_at: float = 0.0
    digest: str | None = None
    server_version: str | None = None

    @property
    def text(self) -> str:
        return "".join(line.text for line in self.lines).strip()

    @property
    def audio_url(self) -> str:
        return f"/ui/speech/{self.id}/audio"


def new_id() -> str:
    return secrets.token_urlsafe(12)


def add(db: sqlite3.Connection, result: Transcript, audio: bytes) -> None:
    """A result whose job has just started, with its audio; the oldest beyond KEEP_AT_MOST go."""
    result.created_at = time.time()
    db.execute(
        "INSERT INTO transcripts (id, created_at, body, status, audio) VALUES (?, ?, ?, ?, ?)",
        (result.id, result.created_at, msgspec.json.encode(result), result.status, audio),
    )
    ROWS.trim(db, KEEP_AT_MOST)


def finish(db: sqlite3.Connection, result: Transcript) -> None:
    """The job's end: its status, error and lines. A result deleted meanwhile stays deleted."""
    db.execute(
        "UPDATE transcripts SET body = ?, status = ? WHERE id = ?",
        (msgspec.json.encode(result), result.status, result.id),
    )


ROWS = KeptResults(
    "transcripts", Transcript, "There is no transcript “{id}”; it may have been deleted."
)
get, found = ROWS.get, ROWS.found


def recent(db: sqlite3.Connection, limit: int = LISTED_AT_MOST) -> list[Transcript]:
    """The newest results, newest first."""
    return ROWS.recent(db, limit)


def audio(db: sqlite3.Connection, rid: str) -> tuple[bytes, str] | None:
    """A result's audio and its media type."""
    row = db.execute("SELECT audio, body FROM transcripts WHERE id = ?", (rid,)).fetchone()
    if row is None:
        return None
    return bytes(row[0]), msgspec.json.decode(row[1], type=Transcript).media_type
