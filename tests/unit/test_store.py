"""The SQLite store on its own: transactions, retention, recovery after a restart, paging."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest
from localoip.app.api.openai.records import OpenAIStore, Page
from localoip.app.api.openai.tables import OPENAI_TABLES
from localoip.app.core.config import ConfigError, load_settings
from localoip.app.core.errors import InvalidInput
from localoip.app.core.store import Tables, store_file


def run(coro):
    return asyncio.run(coro)


def completion(cid: str, created: float | None = None, model: str = "m") -> dict:
    return {
        "id": cid,
        "object": "chat.completion",
        "created": int(time.time() if created is None else created),
        "model": model,
        "choices": [],
        "usage": None,
    }


def response(rid: str, status: str = "completed", created: float | None = None) -> dict:
    return {
        "id": rid,
        "object": "response",
        "created_at": int(time.time() if created is None else created),
        "status": status,
        "background": True,
        "output": [],
    }


def messages(cid: str, ids: list[int]) -> list[dict]:
    return [{"id": f"{cid}-{i}", "role": "user", "content": str(i)} for i in ids]


async def opened(path: Path, days: int = 30) -> OpenAIStore:
    store = OpenAIStore(path, (OPENAI_TABLES,), days)
    await store.start()
    return store


def test_a_write_that_fails_midway_leaves_nothing(tmp_path):
    async def go():
        store = await opened(tmp_path / "s.db")
        # The second message repeats the first's id: the insert fails after the completion
        # row and one message went in, and the transaction takes both back.
        with pytest.raises(sqlite3.IntegrityError):
            await store.add_completion(completion("c1"), {}, messages("c1", [0, 0]), {})
        assert await store.completion("c1") is None
        assert await store.completion_messages("c1", Page()) is None
        await store.add_completion(completion("c1"), {}, messages("c1", [0, 1]), {})
        assert (await store.completion("c1"))["id"] == "c1"
        await store.close()

    run(go())
    with sqlite3.connect(tmp_path / "s.db") as db:
        assert db.execute("SELECT count(*) FROM chat_messages").fetchone() == (2,)


def test_objects_survive_closing_and_reopening(tmp_path):
    async def go():
        store = await opened(tmp_path / "s.db")
        await store.add_completion(completion("c1"), {"model": "m"}, messages("c1", [0]), {})
        await store.add_response(response("r1"), [{"id": "i1", "type": "message"}])
        await store.close()
        store = await opened(tmp_path / "s.db")
        assert (await store.completion("c1"))["id"] == "c1"
        assert (await store.response("r1"))["id"] == "r1"
        assert await store.response_items("r1", Page()) == (
            [{"id": "i1", "type": "message"}],
            False,
        )
        await store.close()

    run(go())


def test_the_database_is_in_wal_mode(tmp_path):
    async def go():
        store = await opened(tmp_path / "s.db")
        await store.add_response(response("r1"), [])
        await store.close()

    run(go())
    with sqlite3.connect(tmp_path / "s.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_a_server_that_stores_nothing_makes_no_file(tmp_path):
    store = OpenAIStore(tmp_path / "never" / "s.db", (OPENAI_TABLES,))
    run(store.start())
    run(store.close())
    assert not (tmp_path / "never").exists()


def test_expired_rows_are_deleted_at_start_up(tmp_path):
    old = time.time() - 3 * 86400

    async def go():
        store = await opened(tmp_path / "s.db", days=0)  # 0 keeps everything
        await store.add_completion(completion("old", old), {}, messages("old", [0]), {})
        await store.add_completion(completion("new"), {}, messages("new", [0]), {})
        await store.add_response(response("old-r", created=old), [{"id": "i", "type": "x"}])
        assert await store.completion("old") is not None
        await store.close()

        store = await opened(tmp_path / "s.db", days=2)
        assert await store.completion("old") is None
        assert await store.response("old-r") is None
        assert await store.completion("new") is not None
        await store.close()

    run(go())
    with sqlite3.connect(tmp_path / "s.db") as db:  # their messages and items went with them
        assert db.execute("SELECT count(*) FROM chat_messages").fetchone() == (1,)
        assert db.execute("SELECT count(*) FROM response_items").fetchone() == (0,)


def test_a_store_holds_the_tables_its_users_give_and_expires_only_those_they_name(tmp_path):
    old = time.time() - 3 * 86400
    kept = Tables("CREATE TABLE IF NOT EXISTS notes (created_at REAL NOT NULL);")
    expiring = Tables("CREATE TABLE IF NOT EXISTS logs (created_at REAL NOT NULL);", ("logs",))

    async def go():
        store = OpenAIStore(tmp_path / "s.db", (kept, expiring), retention_days=2)

        def write(db: sqlite3.Connection) -> None:
            db.execute("INSERT INTO notes VALUES (?)", (old,))
            db.execute("INSERT INTO logs VALUES (?)", (old,))

        await store.run(write)
        await store.close()
        store = OpenAIStore(tmp_path / "s.db", (kept, expiring), retention_days=2)
        await store.start()
        await store.close()

    run(go())
    with sqlite3.connect(tmp_path / "s.db") as db:
        names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert names == {"notes", "logs"}
        assert db.execute("SELECT count(*) FROM notes").fetchone() == (1,)
        assert db.execute("SELECT count(*) FROM logs").fetchone() == (0,)


def test_responses_left_running_by_a_stopped_server_are_failed(tmp_path):
    async def go():
        store = await opened(tmp_path / "s.db")
        await store.add_response(response("running", "in_progress"), [])
        await store.add_response(response("queued", "queued"), [])
        await store.add_response(response("done", "completed"), [])
        await store.close()
        store = await opened(tmp_path / "s.db")
        statuses = [(await store.response(r))["status"] for r in ("running", "queued", "done")]
        error = (await store.response("running"))["error"]
        await store.close()
        return statuses, error

    statuses, error = run(go())
    assert statuses == ["failed", "failed", "completed"]
    assert error["code"] == "server_error"


def test_pages_follow_after_limit_and_order(tmp_path):
    async def go():
        store = await opened(tmp_path / "s.db")
        await store.add_completion(completion("c"), {}, messages("c", [0, 1, 2, 3, 4]), {})
        ids = []
        for order in ("asc", "desc"):
            first, more = await store.completion_messages("c", Page(None, 2, order))
            rest, more_after = await store.completion_messages(
                "c", Page(first[-1]["id"], 10, order)
            )
            ids.append(([m["id"] for m in first + rest], more, more_after))
        with pytest.raises(InvalidInput) as bad:
            await store.completion_messages("c", Page("c-99", 2, "asc"))
        await store.close()
        return ids, bad.value.param

    ids, param = run(go())
    assert ids[0] == ([f"c-{i}" for i in range(5)], True, False)
    assert ids[1] == ([f"c-{i}" for i in reversed(range(5))], True, False)
    assert param == "after"


def test_completions_filter_by_model_and_metadata(tmp_path):
    async def go():
        store = await opened(tmp_path / "s.db")
        await store.add_completion(completion("a", model="x"), {}, [], {"team": "red"})
        await store.add_completion(completion("b", model="y"), {}, [], {"team": "red", "k": "1"})
        await store.add_completion(completion("c", model="y"), {}, [], {"team": "blue"})
        found = {}
        for name, model, metadata in [
            ("all", None, {}),
            ("y", "y", {}),
            ("red", None, {"team": "red"}),
            ("red-y-k", "y", {"team": "red", "k": "1"}),
            ("none", "x", {"team": "blue"}),
        ]:
            data, _ = await store.completions(model, metadata, Page())
            found[name] = [c["id"] for c in data]
        await store.close()
        return found

    assert run(go()) == {
        "all": ["a", "b", "c"],
        "y": ["b", "c"],
        "red": ["a", "b"],
        "red-y-k": ["b"],
        "none": [],
    }


def test_store_path_is_relative_to_models_toml_and_defaults_to_the_data_folder(
    tmp_path, monkeypatch
):
    assert store_file("db/x.db", tmp_path) == tmp_path / "db" / "x.db"
    assert store_file("/abs/x.db", tmp_path) == Path("/abs/x.db")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert store_file(None, tmp_path) == tmp_path / "xdg" / "localoip" / "localoip.db"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    expected = tmp_path / "home" / ".local" / "share" / "localoip" / "localoip.db"
    assert store_file(None, tmp_path) == expected


def test_models_toml_takes_store_settings(tmp_path):
    config = tmp_path / "models.toml"
    config.write_text('[server]\nstore_path = "s.db"\nstore_retention_days = 0\n')
    server = load_settings(config).server
    assert (server.store_path, server.store_retention_days) == ("s.db", 0)
    config.write_text("[server]\nstore_retention_days = -1\n")
    with pytest.raises(ConfigError, match="store_retention_days"):
        load_settings(config)
