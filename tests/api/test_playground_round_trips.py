"""The playground's calls to the store before a page answers: Send (a new chat or the next
message) and regenerate each make one store call (one transaction), in process on create_app."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient
from localoip.app.core.config import load_settings
from localoip.app.core.store import Database
from localoip.app.server import create_app
from support.configs import tiny_chat

PAGE = {"HX-Request": "true"}


@pytest.fixture
def client(tiny_dir: Path, tmp_path: Path) -> Iterator[TestClient]:
    """The app in process; tiny-chat loads on demand, so no runner starts with the app."""
    config = tmp_path / "models.toml"
    config.write_text(
        f'[server]\nload = "on-demand"\nstore_path = "store.db"\n\n{tiny_chat(tiny_dir)}'
    )
    with TestClient(create_app(load_settings(config)), base_url="http://127.0.0.1:9000") as c:
        yield c


@pytest.fixture
def store_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the functions the store runs on its thread, in order, from now on; but
    for the saves of the reply jobs a request starts, which run beside it (under load, a
    three-token reply can be written before the request's page is read)."""
    calls: list[str] = []
    run, transaction = Database._run, Database.run

    async def counted(self: Database, fn: Any, *args: Any) -> Any:
        if fn.__qualname__ != "Database.run.<locals>.call":
            calls.append(fn.__qualname__)
        return await run(self, fn, *args)

    async def counted_transaction(self: Database, fn: Any) -> Any:
        if not fn.__qualname__.startswith("ChatJob.save."):
            calls.append(fn.__qualname__)
        return await transaction(self, fn)

    monkeypatch.setattr(Database, "_run", counted)
    monkeypatch.setattr(Database, "run", counted_transaction)
    return calls


def send(client: TestClient, path: str = "/ui/chat", **form: str) -> str:
    """POST a chat form the way the page does; waits for the reply it starts to end, and
    answers with the HTML the POST answered with."""
    data = {"model": "tiny-chat", "max_tokens": "3", **form}
    answer = client.post(path, data=data, headers=PAGE)
    assert answer.status_code == 200, answer.text
    return answer.text


def finish(client: TestClient, page: str) -> str:
    """Wait for the reply the page streams to end; its id."""
    job = re.search(r'sse-connect="/ui/chat/([^/"]+)/stream"', page)[1]
    assert "event: done" in client.get(f"/ui/chat/{job}/stream").text
    return job


def test_a_send_writes_and_reads_the_page_in_one_store_call(
    client: TestClient, store_calls: list[str]
) -> None:
    page = send(client, message="hi")
    assert len(store_calls) == 1, store_calls  # it was 4: add, read the path, add, read
    assert '<div class="turn-body text">hi</div>' in page
    reply = finish(client, page)
    cid = re.search(r'name="conversation" value="([^"]+)"', page)[1]

    store_calls.clear()
    page = send(client, message="and again", conversation=cid)
    assert len(store_calls) == 1, store_calls
    assert page.count('class="turn user"') == 2
    finish(client, page)

    store_calls.clear()
    page = send(client, f"/ui/chat/{cid}/regenerate/{reply}")
    assert len(store_calls) == 1, store_calls
    assert "2/2" in page
    finish(client, page)
