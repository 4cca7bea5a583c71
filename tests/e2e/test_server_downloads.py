"""Downloads the server does by itself, from a loopback fake hub: an `hf:` model not yet here
shows its progress in the repository index, /v1/models, the playground and the log while
other models are ready; a download stopped by the server's end resumes at the next start."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import OpenAI
from support.browser import close_page, needs_chromium, open_page, tab
from support.configs import model_toml, tiny_chat
from support.fake_hub import FakeHub
from support.paths import LOCALOIP
from support.servers import Server, Servers, stop_server
from support.tiny_models import build_tiny_gguf

REPO = "tester/big-GGUF"
FILE = "big-Q6_K.gguf"
SIZE = 12 * 1024 * 1024
CHUNK = 10 * 1024 * 1024  # huggingface_hub writes and reports a download 10 MiB at a time
HELD_AT = 11 * 1024 * 1024


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeHub]:
    """A 12 MiB GGUF (a tiny model, padded: llama.cpp reads tensors by offset)."""
    folder = tmp_path_factory.mktemp("big-hub")
    model = build_tiny_gguf(folder / FILE, name="big", file_type="MOSTLY_Q6_K").read_bytes()
    hub = FakeHub()
    hub.add(REPO, {FILE: model + bytes(SIZE - len(model)), "README.md": b"# big"})
    hub.start()
    yield hub
    hub.stop()


def online(hub: FakeHub, home: Path) -> dict[str, str]:
    """The fake hub, a cache of the test's own, and a read timeout longer than any hold (by
    default huggingface_hub gives up on a silent connection after 10 s and retries)."""
    return {
        "HF_HOME": str(home),
        "HF_ENDPOINT": hub.url,
        "HF_HUB_OFFLINE": "0",
        "HF_HUB_DOWNLOAD_TIMEOUT": "600",
    }


def wait_for(what: str, check: Callable[[], Any], seconds: float = 300) -> Any:
    """Poll until check() gives something true; fail naming `what` after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    pytest.fail(f"gave up waiting for {what}")


def chat(server: Server, model: str) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}
    return httpx.post(server.url + "/v1/chat/completions", json=body, timeout=60)


def index(server: Server) -> dict[str, dict]:
    return {m["name"]: m for m in httpx.post(server.url + "/v2/repository/index").json()}


def file_gets(hub: FakeHub) -> list[str]:
    """The Range header of each GET of the big file, in order."""
    return [r for method, path, r in hub.requests if method == "GET" and path.endswith(FILE)]


@pytest.fixture(scope="module")
def halfway(
    hub: FakeHub, tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory, servers: Servers
) -> Iterator[Server]:
    """A server whose `big` model is downloading, held by the hub after 11 of its 12 MiB,
    beside a local model."""
    folder = tmp_path_factory.mktemp("halfway")
    config = folder / "models.toml"
    config.write_text(
        model_toml("big", "llama-cpp", f"hf:{REPO}", n_ctx=256, threads=1) + tiny_chat(tiny_dir)
    )
    hub.hold(FILE, HELD_AT)
    with servers.alone(config, wait_ready=False, env=online(hub, folder / "hf")) as server:
        done = lambda: (index(server)["big"]["download"] or {}).get("done")  # noqa: E731
        wait_for("10 MiB downloaded", done)
        yield server
        hub.release(FILE)


def test_the_index_shows_how_far_a_download_has_got(halfway):
    big = index(halfway)["big"]
    assert big["state"] == "LOADING"
    download = big["download"]
    assert (download["file"], download["files"]) == (FILE, 1)
    assert (download["done"], download["total"]) == (CHUNK, SIZE)
    assert download["bytes_per_second"] > 0 and download["seconds_left"] > 0


def test_a_download_does_not_hold_back_another_models_readiness(halfway):
    wait_for("tiny-chat ready", lambda: index(halfway)["tiny-chat"]["state"] == "READY")
    reply = chat(halfway, "tiny-chat")
    assert reply.status_code == 200, reply.text
    assert index(halfway)["big"]["state"] == "LOADING"


def test_v1_models_shows_the_download(halfway):
    client = OpenAI(base_url=halfway.url + "/v1", api_key="none", max_retries=0)
    big = client.models.retrieve("big")
    assert big.state == "LOADING"
    assert big.download["file"] == FILE and big.download["done"] == CHUNK


def test_a_request_for_the_downloading_model_is_503_saying_it_is_loading(halfway):
    reply = chat(halfway, "big")
    assert reply.status_code == 503
    assert "not ready (LOADING)" in reply.json()["error"]["message"]


def test_the_playground_shows_a_live_bar(halfway):
    page = httpx.get(halfway.url + "/ui/models", headers={"HX-Request": "true"}).text
    assert f'<progress max="{SIZE}" value="{CHUNK}">' in page
    assert re.search(rf"downloading {re.escape(FILE)}: 10\.5MB of 12\.6MB \(83%\)", page), page
    status = httpx.get(halfway.url + "/ui/status", headers={"HX-Request": "true"}).text
    assert 'hx-trigger="every 1s"' in status  # the bar moves once a second while it loads


def test_the_log_tells_the_progress_every_few_seconds(halfway):
    line = re.compile(rf"model 'big': downloading hf:{REPO}: {re.escape(FILE)}: 10\.5MB of 12\.6MB")
    wait_for("two progress lines", lambda: len(line.findall(halfway.logs())) >= 2, seconds=60)


def test_ps_shows_the_download_and_the_context(halfway):
    done = subprocess.run(
        [str(LOCALOIP), "ps", "--url", halfway.url], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    header, *rows = (line.split() for line in done.stdout.splitlines())
    big = dict(zip(header, next(row for row in rows if row[0] == "big"), strict=False))
    assert (big["FILE"], big["DONE"], big["TOTAL"]) == (FILE, str(CHUNK), str(SIZE))
    assert big["CONTEXT_LENGTH"] == "256"  # configured; the file tells the rest once loaded


@needs_chromium
def test_the_models_tab_shows_a_live_bar_that_gives_way_to_ready(halfway, hub, browser):
    page = open_page(browser, halfway)
    try:
        tab(page, "Models")
        row = page.locator('tr[data-model="big"]')
        bar = row.get_by_role("group", name="Downloading big").locator("progress")
        assert (bar.get_attribute("value"), bar.get_attribute("max")) == (str(CHUNK), str(SIZE))
        assert "83%" in row.inner_text()
        hub.release(FILE)  # the page, never reloaded, follows the model to READY
        page.wait_for_selector('tr[data-model="big"][data-state="READY"]', timeout=300_000)
        assert row.locator("progress").count() == 0
    finally:
        close_page(page)


def test_the_held_download_ends_and_the_model_serves(halfway, hub):
    hub.release(FILE)
    wait_for("big ready", lambda: index(halfway)["big"]["state"] == "READY")
    assert index(halfway)["big"]["download"] is None
    assert f"model 'big': downloaded hf:{REPO}: 1 file(s), 12.6MB" in halfway.logs()
    reply = chat(halfway, "big")
    assert reply.status_code == 200, reply.text
    assert httpx.get(halfway.url + "/v1/models/big").json()["quantization"] == "Q6_K"
    page = httpx.get(halfway.url + "/ui/models", headers={"HX-Request": "true"}).text
    assert "context 256 of 2048 tokens · Q6_K · 12.6 MB" in page


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL])
def test_a_download_cut_by_the_servers_end_resumes_at_the_next_start(hub, tmp_path, how, launch):
    config = tmp_path / "models.toml"
    config.write_text(model_toml("big", "llama-cpp", f"hf:{REPO}", n_ctx=256, threads=1))
    env = online(hub, tmp_path / "hf")
    hub.requests.clear()
    hub.hold(FILE, HELD_AT)
    first = launch(config, log="first.log", wait_ready=False, env=env)
    try:
        wait_for("10 MiB downloaded", lambda: (index(first)["big"]["download"] or {}).get("done"))
        os.kill(first.process.pid, how)
        first.process.wait(timeout=60)
    finally:
        hub.release(FILE)
        stop_server(first)
    second = launch(config, log="second.log", env=env)
    try:
        assert index(second)["big"]["state"] == "READY", second.logs()
        assert f"{FILE}: resuming from {CHUNK} of {SIZE} bytes" in second.logs()
    finally:
        stop_server(second)
    assert file_gets(hub) == ["", f"bytes={CHUNK}-"]
    blobs = tmp_path / "hf" / "hub" / "models--tester--big-GGUF" / "blobs"
    assert not list(blobs.glob("*.incomplete")), "no partial file is left behind"
    snapshot = next((tmp_path / "hf" / "hub" / "models--tester--big-GGUF").rglob(FILE))
    assert snapshot.read_bytes() == hub.files_of(REPO, "main")[1][FILE]


def test_a_corrupt_download_leaves_the_model_unavailable_saying_so_and_loads_when_fixed(
    hub, tmp_path, launch
):
    config = tmp_path / "models.toml"
    config.write_text(model_toml("big", "llama-cpp", f"hf:{REPO}", n_ctx=256, threads=1))
    hub.corrupt.add(FILE)
    try:
        server = launch(config, log="server.log", env=online(hub, tmp_path / "hf"))
    except BaseException:
        hub.corrupt.discard(FILE)
        raise
    try:
        big = index(server)["big"]
        assert big["state"] == "UNAVAILABLE" and big["download"] is None
        assert f"hf:{REPO}: {FILE} is corrupt: its sha256 is" in big["reason"]
        cache = tmp_path / "hf" / "hub" / "models--tester--big-GGUF"
        assert not [p for p in cache.rglob("*") if p.is_file()], "nothing damaged is kept"
        hub.corrupt.discard(FILE)
        loaded = httpx.post(server.url + "/v2/repository/models/big/load", timeout=300)
        assert loaded.status_code == 200, loaded.text
        assert chat(server, "big").status_code == 200
    finally:
        hub.corrupt.discard(FILE)
        stop_server(server)
