"""The playground's tables in the store: conversations and their messages (with the images
they carry, each kept once by its SHA-256), image results and their pictures, transcripts and
their audio, and arenas.
Nothing here expires; a restart interrupts what was running."""

from __future__ import annotations

import sqlite3

from localoip.app.core.store import Tables
from localoip.app.playground.records import chat_images

SCHEMA = """
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
CREATE TABLE IF NOT EXISTS chat_images (
    sha256 TEXT PRIMARY KEY,
    media_type TEXT NOT NULL,
    data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS message_images (
    message TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    image TEXT NOT NULL REFERENCES chat_images(sha256),
    PRIMARY KEY (message, position)
);
CREATE INDEX IF NOT EXISTS message_images_image ON message_images(image);
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
CREATE TABLE IF NOT EXISTS transcripts (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL,
    audio BLOB NOT NULL
);
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


def interrupt_unfinished(db: sqlite3.Connection) -> None:
    """Replies, images and transcripts being made when the server stopped will never finish:
    interrupted
    (what arrived of a reply is kept)."""
    db.execute("UPDATE messages SET status = 'interrupted' WHERE status = 'streaming'")
    db.execute("UPDATE image_jobs SET status = 'interrupted' WHERE status = 'running'")
    db.execute("UPDATE transcripts SET status = 'interrupted' WHERE status = 'running'")
    chat_images.forget_unused(db)


PLAYGROUND_TABLES = Tables(SCHEMA, recover=interrupt_unfinished)
