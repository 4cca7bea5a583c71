"""The OpenAI API's tables in the store: Responses with their input items, and stored chat
completions with their request messages; both expire after the retention period."""

from __future__ import annotations

import sqlite3

import msgspec
from localoip.app.core.store import Tables

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
"""

INTERRUPTED = {
    "code": "server_error",
    "message": "the server stopped before this response finished",
    "param": None,
    "type": "server_error",
}


def fail_unfinished(db: sqlite3.Connection) -> None:
    """Responses that were running when the server stopped will never finish: failed."""
    db.execute(
        "UPDATE responses SET body = json_set(body, '$.status', 'failed', '$.error',"
        " json(?)) WHERE json_extract(body, '$.status') IN ('queued', 'in_progress')",
        (msgspec.json.encode(INTERRUPTED).decode(),),
    )


OPENAI_TABLES = Tables(SCHEMA, ("responses", "chat_completions"), fail_unfinished)
