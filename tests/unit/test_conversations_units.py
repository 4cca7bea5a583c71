"""Conversations' pure parts: the shown path through sibling branches, and checking imports."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import msgspec
import pytest
from localoip.app.core.errors import InvalidInput
from localoip.app.core.store import Database
from localoip.app.playground.records import conversations
from localoip.app.playground.records.conversations import (
    FORMAT,
    IMPORT_AT_MOST_BYTES,
    ConversationFile,
    Message,
    MessageMeta,
    latest_leaf,
    parse_file,
    shown_path,
    title_from,
)
from localoip.app.playground.records.markdown import parse_markdown
from localoip.app.playground.records.tables import PLAYGROUND_TABLES


def tree() -> list[Message]:
    """q1 -> a1, a2 (regenerated); q1' (an edit of q1) -> a3."""
    return [
        Message("q1", None, "user", "question", 1.0),
        Message("a1", "q1", "assistant", "answer", 2.0),
        Message("a2", "q1", "assistant", "again", 3.0),
        Message("q1b", None, "user", "edited question", 4.0),
        Message("a3", "q1b", "assistant", "new answer", 5.0),
    ]


def test_the_shown_path_gives_each_step_its_place_among_its_siblings() -> None:
    path = shown_path(tree(), "a1")
    assert [s.message.id for s in path] == ["q1", "a1"]
    first, reply = path
    assert (first.siblings.index, first.siblings.count, first.siblings.next) == (1, 2, "q1b")
    assert (reply.siblings.index, reply.siblings.count) == (1, 2)
    assert (reply.siblings.previous, reply.siblings.next) == (None, "a2")


def test_showing_a_sibling_follows_its_newest_replies_down_to_a_leaf() -> None:
    assert latest_leaf(tree(), "q1") == "a2"
    assert latest_leaf(tree(), "q1b") == "a3"
    assert latest_leaf(tree(), "a1") == "a1"


def test_an_unknown_current_message_shows_nothing() -> None:
    assert shown_path(tree(), None) == [] == shown_path(tree(), "gone")


def test_a_title_is_the_first_line_shortened() -> None:
    assert title_from("\n  Hello there \nsecond") == "Hello there"
    assert len(title_from("x" * 100)) == 60 and title_from("   ") == "New chat"


def exported(messages: list[dict], arenas: list[dict] | None = None) -> bytes:
    found = {
        "format": FORMAT,
        "version": 1,
        "title": "t",
        "created_at": 1.0,
        "current": None,
        "messages": messages,
    }
    return msgspec.json.encode(found if arenas is None else {**found, "arenas": arenas})


ASKED = {"id": "q", "parent": None, "role": "user", "content": "?", "created_at": 1}
REPLIES = [
    {"id": r, "parent": "q", "role": "assistant", "content": r, "created_at": 1} for r in "ab"
]


def arena(columns: str = "ab", vote: str | None = None) -> list[dict]:
    sides = [{"id": c, "label": f"model {c}"} for c in columns]
    return [{"prompt": "?", "seed": 1, "columns": sides, "blind": True, "vote": vote}]


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"{not json", "not a localoip conversation file"),
        (b'{"format": "other"}', "not a localoip conversation file"),
        (
            exported(
                [{"id": "a", "parent": None, "role": "robot", "content": "", "created_at": 1}]
            ),
            "`$.messages[0].role`",
        ),
        (
            exported([{"id": "a", "parent": "z", "role": "user", "content": "", "created_at": 1}]),
            "its parent “z” is not an earlier message",
        ),
        (
            exported(
                [{"id": "a", "parent": None, "role": "user", "content": "", "created_at": 1}] * 2
            ),
            "the id “a” is used twice",
        ),
        (b" " * (IMPORT_AT_MOST_BYTES + 1), "an import takes at most"),
        (exported([ASKED, *REPLIES], arena("a")), "arenas[0]: an arena has 2 to 4"),
        (exported([ASKED, *REPLIES], arena("aa")), "arenas[0]: an arena has 2 to 4 different"),
        (exported([ASKED, *REPLIES], arena("aq")), "arenas[0]: its column “q” is not a reply"),
        (exported([ASKED, *REPLIES], arena("ab", "z")), "its vote “z” is not one of its columns"),
        (exported([ASKED, *REPLIES], arena() * 3), "more arenas than replies"),
    ],
)
def test_a_bad_import_says_what_is_wrong_and_where(data: bytes, words: str) -> None:
    with pytest.raises(InvalidInput, match=words.replace("$", r"\$").replace("[", r"\[")):
        parse_file(data)


def test_a_file_with_an_arena_and_its_vote_or_a_tie_is_accepted() -> None:
    for vote in ("b", "tie", None):
        found = parse_file(exported([ASKED, *REPLIES], arena("ab", vote)))
        assert found.arenas[0].vote == vote and [c.id for c in found.arenas[0].columns] == [
            "a",
            "b",
        ]
    assert parse_file(exported([ASKED, *REPLIES])).arenas == []  # files from before arenas


def test_markdown_import_reads_speakers_outside_code_fences() -> None:
    found = parse_markdown(
        "# My chat\n\n## User\n\nShow me a heading\n\n## Assistant (tiny-chat)\n\n"
        "```md\n## User\n```\nThat was a heading.\n"
    )
    assert isinstance(found, ConversationFile) and found.title == "My chat"
    assert [(m.role, m.content) for m in found.messages] == [
        ("user", "Show me a heading"),
        ("assistant", "```md\n## User\n```\nThat was a heading."),
    ]
    assert found.messages[1].meta.model == "tiny-chat" and found.current == "m1"


def test_markdown_import_reads_a_folded_reasoning_back_as_the_replys() -> None:
    found = parse_markdown(
        "# Why\n\n## User\n\nWhy?\n\n## Assistant (qwen3)\n\n"
        "<details><summary>Reasoning (7 tokens)</summary>\n\nFirst:\n## User\nsaid why\n\n"
        "</details>\n\nBecause.\n"
    )
    reply = found.messages[1]
    assert [m.role for m in found.messages] == ["user", "assistant"]  # no speaker in a fold
    assert (reply.content, reply.meta.reasoning) == ("Because.", "First:\n## User\nsaid why")
    assert (reply.meta.reasoning_tokens, reply.meta.model) == (7, "qwen3")


def test_markdown_with_no_speakers_is_refused_in_words() -> None:
    with pytest.raises(InvalidInput, match="needs “## User” and “## Assistant” headings"):
        parse_markdown("just some notes")


# -- in the store --------------------------------------------------------------------------


def test_an_import_that_fails_half_way_leaves_nothing_behind(tmp_path: Path) -> None:
    found = parse_markdown("# Half\n\n## User\n\nhi\n\n## Assistant\n\nhello\n")

    async def scenario() -> list:
        store = Database(tmp_path / "db.sqlite", (PLAYGROUND_TABLES,))
        await store.start()

        def import_then_fail(db: sqlite3.Connection) -> None:
            conversations.import_file(db, found)
            raise RuntimeError("the disk filled up")

        with pytest.raises(RuntimeError):
            await store.run(import_then_fail)
        listed = await store.run(lambda db: conversations.listed(db, "Half"))
        await store.close()
        return listed

    assert asyncio.run(scenario()) == []


def test_a_reply_the_server_stopped_during_is_marked_interrupted_at_start(tmp_path: Path) -> None:
    async def write(path: Path) -> str:
        store = Database(path, (PLAYGROUND_TABLES,))

        def add(db: sqlite3.Connection) -> str:
            cid = conversations.create(db, "t")
            user = conversations.add_message(db, cid, None, "user", "hi", MessageMeta())
            conversations.add_message(
                db, cid, user, "assistant", "", MessageMeta(), "streaming", "r1"
            )
            return cid

        cid = await store.run(add)
        await store.close()
        return cid

    async def restart(path: Path, cid: str) -> str:
        store = Database(path, (PLAYGROUND_TABLES,))
        await store.start()
        found = await store.run(lambda db: conversations.read(db, cid))
        await store.close()
        return found.path[-1].message.status

    path = tmp_path / "db.sqlite"
    assert asyncio.run(restart(path, asyncio.run(write(path)))) == "interrupted"
