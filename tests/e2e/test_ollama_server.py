"""The Ollama API on a real server: `[server] ollama_port` serves the same app on a second port,
and /api/pull and /api/delete work a model's `hf:` files against a loopback fake hub, through
the official ollama client as OLLAMA_HOST would point it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import ollama
import pytest
from support.configs import model_toml, tiny_chat
from support.fake_hub import FakeHub
from support.servers import Server, Servers, free_port
from support.tiny_models import build_tiny_gguf

REPO = "tester/tiny-GGUF"
FILE = "tiny-Q8_0.gguf"
HUB_NAME = f"hf.co/{REPO}:Q8_0"
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeHub]:
    folder = tmp_path_factory.mktemp("ollama-hub")
    model = build_tiny_gguf(folder / FILE, name="hub-tiny", file_type="MOSTLY_Q8_0")
    hub = FakeHub()
    hub.add(REPO, {FILE: model.read_bytes(), "README.md": b"# tiny"})
    hub.start()
    yield hub
    hub.stop()


@pytest.fixture(scope="module")
def served(
    hub: FakeHub, tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory, servers: Servers
) -> Iterator[tuple[Server, int]]:
    """A server with tiny-chat and `hub-tiny` (the hub's GGUF, loaded on its first request),
    on its port and on an `ollama_port`; its own Hugging Face cache, online to the fake hub."""
    folder = tmp_path_factory.mktemp("ollama-server")
    second = free_port()
    config = folder / "models.toml"
    config.write_text(
        f'[server]\nload = "on-demand"\nollama_port = {second}\n\n'
        + tiny_chat(tiny_dir)
        + model_toml("hub-tiny", "llama-cpp", f"hf:{REPO}:Q8_0", n_ctx=256, threads=1)
    )
    env = {"HF_HOME": str(folder / "hf"), "HF_ENDPOINT": hub.url, "HF_HUB_OFFLINE": "0"}
    with servers.alone(config, env=env) as server:
        yield server, second


def file_gets(hub: FakeHub) -> int:
    return sum(1 for method, path, _ in hub.requests if method == "GET" and path.endswith(FILE))


def test_ollama_port_serves_the_same_app(served):
    server, second = served
    client = ollama.Client(host=f"http://127.0.0.1:{second}")
    names = {m.model for m in client.list().models}
    assert names == {"tiny-chat:latest", "hub-tiny:latest"}
    assert client.chat(model="tiny-chat", messages=HI, options={"num_predict": 2}).done
    assert httpx.head(f"http://127.0.0.1:{second}/").status_code == 200
    assert (
        httpx.get(server.url + "/api/version").json()
        == httpx.get(f"http://127.0.0.1:{second}/api/version").json()
    )
    assert f"and on port {second} (ollama_port)" in server.logs()


def test_pull_streams_progress_and_the_model_then_answers_by_its_hub_name(served, hub):
    server, _ = served
    client = ollama.Client(host=server.url)
    lines = list(client.pull(HUB_NAME, stream=True))
    assert (lines[0].status, lines[-2].status, lines[-1].status) == (
        "pulling manifest",
        "verifying sha256 digest",
        "success",
    )
    size = len(hub.commits[REPO][hub.refs[REPO]["main"]][FILE])
    files = [line for line in lines if line.status == f"pulling {FILE}"]
    assert files and (files[-1].completed, files[-1].total) == (size, size)
    fetched = file_gets(hub)
    reply = client.chat(model=HUB_NAME, messages=HI, options={"num_predict": 2})
    assert reply.done and reply.model == HUB_NAME
    assert file_gets(hub) == fetched  # the load found the pulled file in the cache


def test_pull_of_a_configured_name_answers_success_whole(served):
    server, _ = served
    assert ollama.Client(host=server.url).pull("hub-tiny:latest").status == "success"


def test_delete_unloads_the_model_and_its_files_come_again_on_the_next_pull(served, hub):
    server, _ = served
    client = ollama.Client(host=server.url)
    client.chat(model="hub-tiny", messages=HI, options={"num_predict": 2})
    assert "hub-tiny:latest" in {m.model for m in client.ps().models}
    assert client.delete("hub-tiny").status == "success"
    assert "hub-tiny:latest" not in {m.model for m in client.ps().models}
    fetched = file_gets(hub)
    assert client.pull("hub-tiny").status == "success"
    assert file_gets(hub) == fetched + 1


def test_pull_errors_are_ollama_errors(served):
    server, _ = served
    client = ollama.Client(host=server.url)
    with pytest.raises(ollama.ResponseError) as error:
        list(client.pull("hf.co/tester/no-such-repo:Q8_0", stream=True))
    assert error.value.status_code == 400 and "no-such-repo" in error.value.error
    with pytest.raises(ollama.ResponseError) as error:
        client.pull("llama3.2")
    assert error.value.status_code == 404 and "hf.co/owner/repo" in error.value.error
    with pytest.raises(ollama.ResponseError) as error:
        client.delete("hf.co/tester/never-pulled:Q8_0")
    assert error.value.status_code == 400 and "not downloaded" in error.value.error
