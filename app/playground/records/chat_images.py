"""The images chat messages carry, in the SQLite store (tables `chat_images` and
`message_images`): each image is kept once, by the SHA-256 of its bytes, so an edited message,
a regenerated reply or an imported copy that carries it again adds only a link. An image no
message links to any more (its conversations deleted) is deleted with the last of them.
Functions take a connection and run inside `Store.run`."""

from __future__ import annotations

import base64
import hashlib
import sqlite3
from collections.abc import Iterable

import msgspec
from localoip.app.core.errors import InvalidInput
from localoip.runtimes.wire.images import image_type


class ImageFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A kept image: its SHA-256 (hex), media type and bytes (base64 in an export's JSON)."""

    sha256: str
    media_type: str
    data: bytes

    @property
    def data_url(self) -> str:
        return f"data:{self.media_type};base64," + base64.b64encode(self.data).decode("ascii")

    def words(self) -> str:
        """What it is, in a few words: "image/png, 182 bytes, SHA-256 9f2c…"."""
        return f"{self.media_type}, {len(self.data)} bytes, SHA-256 {self.sha256}"


def image_url(sha256: str) -> str:
    """Where the page shows a kept image (user_turn.html writes the same path)."""
    return f"/ui/chat/images/{sha256}"


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def image_file(data: bytes) -> ImageFile:
    """An image to keep, from bytes already checked as an image."""
    return ImageFile(digest(data), image_type(data), data)


def keep(db: sqlite3.Connection, image: ImageFile) -> str:
    """Keep `image` (once: the same bytes are never stored twice); its SHA-256."""
    db.execute(
        "INSERT OR IGNORE INTO chat_images (sha256, media_type, data) VALUES (?, ?, ?)",
        (image.sha256, image.media_type, image.data),
    )
    return image.sha256


def link(db: sqlite3.Connection, message: str, images: Iterable[str]) -> None:
    """Message `message` carries these kept images (SHA-256s), in this order."""
    db.executemany(
        "INSERT INTO message_images (message, position, image) VALUES (?, ?, ?)",
        [(message, i, sha256) for i, sha256 in enumerate(images)],
    )


def of_conversation(db: sqlite3.Connection, seq: int) -> dict[str, list[str]]:
    """The images of each message of conversation `seq` (its row number) that carries any."""
    rows = db.execute(
        "SELECT mi.message, mi.image FROM message_images mi JOIN messages m ON m.id = mi.message"
        " WHERE m.conversation = ? ORDER BY mi.message, mi.position",
        (seq,),
    ).fetchall()
    found: dict[str, list[str]] = {}
    for message, sha256 in rows:
        found.setdefault(message, []).append(sha256)
    return found


def files(db: sqlite3.Connection, hashes: Iterable[str]) -> dict[str, ImageFile]:
    """The kept images of these SHA-256s, by SHA-256 (those not kept are left out)."""
    wanted = sorted(set(hashes))
    found: dict[str, ImageFile] = {}
    for at in range(0, len(wanted), 500):  # SQLite's limit on a statement's parameters
        chunk = wanted[at : at + 500]
        marks = ", ".join("?" * len(chunk))
        for row in db.execute(
            f"SELECT sha256, media_type, data FROM chat_images WHERE sha256 IN ({marks})", chunk
        ):
            found[row[0]] = ImageFile(row[0], row[1], bytes(row[2]))
    return found


def forget_unused(db: sqlite3.Connection) -> None:
    """Delete the images no message carries any more."""
    db.execute(
        "DELETE FROM chat_images WHERE NOT EXISTS"
        " (SELECT 1 FROM message_images WHERE image = chat_images.sha256)"
    )


def check_file(images: list[ImageFile], carried: list[list[str]]) -> None:
    """An import's images, checked against the messages' (`carried[i]`: message i's):
    InvalidInput unless each image's bytes have its SHA-256 and an image's type, and each
    image a message carries is in the file."""
    given = set()
    for i, image in enumerate(images):
        if digest(image.data) != image.sha256:
            raise InvalidInput(f"images[{i}]: its data does not have its sha256.", "file")
        if image_type(image.data) != image.media_type:
            raise InvalidInput(f"images[{i}]: its data is not a {image.media_type}.", "file")
        given.add(image.sha256)
    for i, hashes in enumerate(carried):
        missing = [h for h in hashes if h not in given]
        if missing:
            raise InvalidInput(f"messages[{i}]: no image {missing[0]} in the file.", "file")
