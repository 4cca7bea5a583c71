"""The `ollama` npm library, unchanged, against a real server (OLLAMA_HOST): chat whole and
streamed with its reasoning, a tool call, a raw generate, embed, list, show, ps and an error.
Skipped where node or npm is missing or the registry cannot be reached."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.chats import WEATHER
from support.configs import model_toml, scripted_chats, tiny_chat
from support.families import QWEN3, QWEN25
from support.family import ANSWER, ARGUMENTS, REASONING
from support.scripted import build_scripted_gguf
from support.servers import Server, Servers

NODE, NPM = shutil.which("node"), shutil.which("npm")
pytestmark = pytest.mark.skipif(not (NODE and NPM), reason="node and npm are not installed")

SCRIPT = r"""
import { Ollama } from 'ollama'

const client = new Ollama({ host: process.env.OLLAMA_HOST })
const ask = [{ role: 'user', content: 'What is the weather in Paris?' }]
const greedy = { temperature: 0 }
const out = {}
out.list = (await client.list()).models.map((m) => m.model).sort()
out.chat = (await client.chat({ model: 'qwen3-thinking', messages: ask, options: greedy })).message
let content = ''
let thinking = ''
for await (const part of await client.chat({
  model: 'qwen3-thinking', messages: ask, stream: true, options: greedy,
})) {
  content += part.message.content
  thinking += part.message.thinking ?? ''
  out.last = part
}
out.streamed = { content, thinking }
const weather = JSON.parse(process.env.WEATHER)
out.calls = (await client.chat({
  model: 'qwen2.5-turns', messages: ask, tools: [weather], options: greedy,
})).message.tool_calls
out.generate = await client.generate({
  model: 'tiny-chat', prompt: 'Once', raw: true, options: { num_predict: 3, temperature: 0 },
})
out.embed = (await client.embed({ model: 'tiny-embed', input: ['a cat', 'a kitten'] })).embeddings
out.show = (await client.show({ model: 'qwen3-thinking' })).capabilities
out.ps = (await client.ps()).models.map((m) => m.model)
try {
  await client.chat({ model: 'nope', messages: ask })
} catch (error) {
  out.error = { name: error.name, status: error.status_code, message: error.error }
}
console.log(JSON.stringify(out))
"""


@pytest.fixture(scope="module")
def ollama_js(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the `ollama` npm package installed, and the script."""
    folder = tmp_path_factory.mktemp("ollama-js")
    done = subprocess.run(
        [NPM, "install", "--no-audit", "--no-fund", "--silent", "ollama@0.6"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        pytest.skip(f"npm could not install ollama: {done.stderr[-500:]}")
    (folder / "client.mjs").write_text(SCRIPT)
    return folder


@pytest.fixture(scope="module")
def js_server(
    servers: Servers, tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("ollama-js-models")
    build_scripted_gguf(folder / "qwen3-thinking.gguf", family=QWEN3, script=QWEN3.thinking)
    build_scripted_gguf(folder / "qwen2.5-turns.gguf", family=QWEN25, script=QWEN25.calling)
    config = (
        '[server]\nload = "on-demand"\n\n'
        + scripted_chats(folder, ["qwen3-thinking", "qwen2.5-turns"])
        + tiny_chat(tiny_dir)
        + model_toml(
            "tiny-embed", "llama-cpp", f"{tiny_dir}/tiny.gguf", n_ctx=512, threads=1, embedding=True
        )
    )
    with servers.alone(config) as server:
        yield server


def test_the_npm_client_works_unchanged(ollama_js, js_server):
    env = {**os.environ, "OLLAMA_HOST": js_server.url, "WEATHER": json.dumps(WEATHER)}
    done = subprocess.run(
        [NODE, "client.mjs"], cwd=ollama_js, capture_output=True, text=True, timeout=300, env=env
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["list"] == [
        "qwen2.5-turns:latest",
        "qwen3-thinking:latest",
        "tiny-chat:latest",
        "tiny-embed:latest",
    ]
    assert (out["chat"]["content"], out["chat"]["thinking"]) == (ANSWER, REASONING)
    assert out["streamed"] == {"content": ANSWER, "thinking": REASONING}
    assert out["last"]["done"] and out["last"]["eval_count"] > 0
    (call,) = out["calls"]
    assert (call["function"]["name"], call["function"]["arguments"]) == (
        "get_weather",
        json.loads(ARGUMENTS),
    )
    assert (out["generate"]["eval_count"], out["generate"]["done_reason"]) == (3, "length")
    assert len(out["embed"]) == 2 and len(out["embed"][0]) == 64
    assert "thinking" in out["show"]
    assert "qwen3-thinking:latest" in out["ps"]
    assert (out["error"]["name"], out["error"]["status"]) == ("ResponseError", 404)
