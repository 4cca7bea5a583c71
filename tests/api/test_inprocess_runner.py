"""The whole app in one process: create_app(settings, runners="in-process") over the tiny
models, on Litestar's AsyncTestClient, with the real runtimes in this process."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from litestar.testing import AsyncTestClient
from localoip.app.core.config import load_settings
from localoip.app.server import create_app
from support.configs import model_toml, tiny_config_text

pytestmark = pytest.mark.anyio
HI = [{"role": "user", "content": "Tell me a story."}]


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def client(
    tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[AsyncTestClient]:
    """The tiny config, plus a slow model that takes one request at a time, served in process."""
    config = tmp_path_factory.mktemp("inprocess") / "models.toml"
    config.write_text(
        tiny_config_text(tiny_dir)
        + model_toml(
            "one-at-a-time",
            "llama-cpp",
            f"{tiny_dir}/slow.gguf",
            n_ctx=2048,
            threads=1,
            parallel=1,
            max_queue=1,
        )
    )
    app = create_app(load_settings(config), runners="in-process")
    async with AsyncTestClient(app, base_url="http://127.0.0.1:9000", timeout=120) as client:
        for _ in range(1200):  # the models load in the background
            if (await client.get("/v2/health/ready")).status_code == 200:
                break
            await asyncio.sleep(0.05)
        yield client


def chat(model: str, **fields: object) -> dict:
    return {"model": model, "messages": HI, "max_tokens": 12, "temperature": 0, **fields}


def streamed_text(body: str) -> tuple[str, list[str | None], str]:
    """The text of an SSE chat stream, its finish reasons, and its last data line."""
    lines = [line[6:] for line in body.splitlines() if line.startswith("data: ")]
    chunks = [json.loads(line) for line in lines[:-1]]
    choices = [c for chunk in chunks for c in chunk["choices"]]
    text = "".join(c["delta"].get("content") or "" for c in choices)
    return text, [c["finish_reason"] for c in choices if c["finish_reason"]], lines[-1]


def runner_children() -> dict[int, str]:
    """This process's children that are localoip runners, by pid, with their command lines.
    Other tests' apps in this session may have runner processes of their own."""
    pid = os.getpid()
    children: list[str] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += (task / "children").read_text().split()
    found = {}
    for child in children:
        try:
            line = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:  # it ended meanwhile
            continue
        if " runner " in line:
            found[int(child)] = line
    return found


async def test_every_tiny_model_loads_in_this_process_with_no_runner_process(client):
    models = {m["id"]: m for m in (await client.get("/v1/models")).json()["data"]}
    names = ("tiny-chat", "slow-chat", "tiny-embed", "minilm", "tiny-sd", "tiny-rerank")
    for name in names:
        assert (await client.get(f"/v2/models/{name}/ready")).status_code == 200, models[name]
    runners = runner_children()
    # one-at-a-time is this app's own model: no runner process serves it
    assert not [line for line in runners.values() if "--model one-at-a-time " in line]
    index = {m["name"]: m for m in (await client.post("/v2/repository/index", json={})).json()}
    for name in (*names, "one-at-a-time"):
        pid = (index[name].get("runner") or {}).get("pid")
        assert pid not in runners, (name, pid)


async def test_a_chat_answers_through_the_in_process_runner(client):
    reply = await client.post("/v1/chat/completions", json=chat("tiny-chat"))
    assert reply.status_code == 200, reply.text
    answer = reply.json()
    assert answer["choices"][0]["message"]["content"]
    assert answer["choices"][0]["finish_reason"] == "length"
    assert answer["usage"]["completion_tokens"] == 12


async def test_a_streamed_chat_gives_the_same_reply_and_ends_with_done(client):
    whole = await client.post("/v1/chat/completions", json=chat("tiny-chat"))
    stream = await client.post("/v1/chat/completions", json=chat("tiny-chat", stream=True))
    assert stream.status_code == 200
    assert stream.headers["content-type"].startswith("text/event-stream")
    text, finishes, last = streamed_text(stream.text)
    assert text == whole.json()["choices"][0]["message"]["content"]
    assert finishes == ["length"]
    assert last == "[DONE]"


async def test_a_chat_the_batching_engine_declines_runs_in_turn_with_the_same_reply(client):
    """A seed that must reproduce keeps a chat out of the engine; it then runs serially."""
    plain = await client.post("/v1/chat/completions", json=chat("tiny-chat", stream=True))
    seeded = await client.post("/v1/chat/completions", json=chat("tiny-chat", stream=True, seed=7))
    assert seeded.status_code == 200
    assert streamed_text(seeded.text) == streamed_text(plain.text)


async def test_embeddings_come_from_llama_cpp_and_sentence_transformers_in_process(client):
    for model, width in (("tiny-embed", 64), ("minilm", 384)):
        reply = await client.post("/v1/embeddings", json={"model": model, "input": ["a", "b c"]})
        assert reply.status_code == 200, reply.text
        vectors = np.array([row["embedding"] for row in reply.json()["data"]])
        assert vectors.shape == (2, width)
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)


async def test_a_request_past_max_queue_is_refused_with_429_and_retry_after(client):
    body = chat("one-at-a-time", max_tokens=128, stream=True)

    def busy() -> object:  # the test client answers whole responses: hold the model elsewhere
        return asyncio.run(client.post("/v1/chat/completions", json=body))

    held = asyncio.create_task(asyncio.to_thread(busy))
    running = 'localoip_requests_running{model="one-at-a-time"} 1.0'
    for _ in range(1000):
        if running in (await client.get("/metrics")).text:
            break
        await asyncio.sleep(0.01)
    refused = await client.post("/v1/chat/completions", json=body)
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.json()["error"]["code"] == "queue_full"
    first = await held
    assert first.status_code == 200
    assert streamed_text(first.text)[1] == ["length"]
