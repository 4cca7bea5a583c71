"""The images chat messages carry, in the playground's store: kept once by SHA-256, linked to
messages in order, read back with the conversation, deleted with the last conversation that
carries them, and checked on import."""

from __future__ import annotations

import asyncio
import base64
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import msgspec
import pytest
from localoip.app.core.errors import InvalidInput
from localoip.app.core.store import Database
from localoip.app.playground.records import chat_images, conversations
from localoip.app.playground.records.chat_images import ImageFile, image_file
from localoip.app.playground.records.conversations import MessageMeta
from localoip.app.playground.records.markdown import parse_markdown
from localoip.app.playground.records.tables import PLAYGROUND_TABLES
from support.tiny_vision import png_data_url

T = TypeVar("T")
RED = image_file(base64.b64decode(png_data_url((200, 0, 0)).split(",", 1)[1]))
GREEN = image_file(base64.b64decode(png_data_url((0, 200, 0)).split(",", 1)[1]))


def in_store(tmp_path: Path, fn: Callable[[sqlite3.Connection], T]) -> T:
    async def run() -> T:
        store = Database(tmp_path / "db.sqlite", (PLAYGROUND_TABLES,))
        await store.start()
        try:
            return await store.run(fn)
        finally:
            await store.close()

    return asyncio.run(run())


def stored_images(db: sqlite3.Connection) -> list[str]:
    return [row[0] for row in db.execute("SELECT sha256 FROM chat_images ORDER BY sha256")]


def with_images(db: sqlite3.Connection, title: str, *images: ImageFile) -> tuple[str, str]:
    """A conversation whose first message carries `images`; (its id, the message's)."""
    cid = conversations.create(db, title)
    kept = [chat_images.keep(db, image) for image in images]
    mid = conversations.add_message(db, cid, None, "user", "look", MessageMeta(), images=kept)
    return cid, mid


def test_an_image_is_kept_once_however_many_messages_carry_it(tmp_path: Path) -> None:
    def scenario(db: sqlite3.Connection) -> tuple[list[str], list[list[str]]]:
        cid, mid = with_images(db, "one", RED, GREEN)
        conversations.add_message(
            db, cid, None, "user", "again", MessageMeta(), images=[RED.sha256]
        )
        with_images(db, "two", RED)
        path = conversations.read(db, cid).path
        edited = conversations.in_conversation(db, cid, mid)
        return stored_images(db), [path[0].message.images, edited.images]

    kept, carried = in_store(tmp_path, scenario)
    assert kept == sorted([RED.sha256, GREEN.sha256])
    assert carried == [[RED.sha256], [RED.sha256, GREEN.sha256]]  # in the order attached


def test_deleting_a_conversation_deletes_only_the_images_nothing_else_carries(
    tmp_path: Path,
) -> None:
    def scenario(db: sqlite3.Connection) -> list[list[str]]:
        one, _ = with_images(db, "one", RED, GREEN)
        two, _ = with_images(db, "two", RED)
        conversations.delete(db, one)
        after_one = stored_images(db)
        conversations.delete(db, two)
        return [after_one, stored_images(db)]

    assert in_store(tmp_path, scenario) == [[RED.sha256], []]


def test_an_export_lists_each_image_once_and_imports_back_to_the_same_links(
    tmp_path: Path,
) -> None:
    def scenario(db: sqlite3.Connection) -> tuple[list[str], list[list[str]]]:
        cid, _ = with_images(db, "one", GREEN, RED)
        file = conversations.export(db, cid)
        conversations.delete(db, cid)
        copy = conversations.import_file(db, conversations.parse_file(encode(file)))
        again = conversations.export(db, copy)
        return [i.sha256 for i in again.images], [m.images for m in again.messages]

    hashes, carried = in_store(tmp_path, scenario)
    assert hashes == sorted([RED.sha256, GREEN.sha256])
    assert carried == [[GREEN.sha256, RED.sha256]]


def encode(file: conversations.ConversationFile) -> bytes:
    return msgspec.json.encode(file)


@pytest.mark.parametrize(
    ("images", "carried", "words"),
    [
        ([ImageFile(RED.sha256, "image/png", GREEN.data)], [], "does not have its sha256"),
        ([ImageFile(RED.sha256, "image/jpeg", RED.data)], [], "its data is not a image/jpeg"),
        ([RED], [[GREEN.sha256]], f"messages[0]: no image {GREEN.sha256} in the file"),
    ],
)
def test_an_import_s_images_are_checked(
    images: list[ImageFile], carried: list[list[str]], words: str
) -> None:
    with pytest.raises(InvalidInput, match=words.replace("[", r"\[").replace("]", r"\]")):
        chat_images.check_file(images, carried)


def test_a_markdown_turn_reads_its_embedded_images_back_and_keeps_its_text() -> None:
    images = f"![image 1]({RED.data_url})\n\n![image 2]({GREEN.data_url})"
    text = f"# Pics\n\n## User\n\n{images}\n\nBoth?\n"
    found = parse_markdown(text)
    (user,) = found.messages
    assert (user.content, user.images) == ("Both?", [RED.sha256, GREEN.sha256])
    assert [i.data for i in found.images] == [RED.data, GREEN.data]
    quoted = parse_markdown("## User\n\nSee ![image 1](data:image/png;base64,AAAA) inline\n")
    assert quoted.messages[0].images == []  # only whole lines before the text are images
