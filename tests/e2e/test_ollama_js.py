"""The `ollama` npm library (installed by .ci/setup into tests/e2e/node), unchanged, against a
real server (OLLAMA_HOST): chat whole and streamed with its reasoning, a tool call, a raw
generate, embed, list, show, ps, an error and, where llama-cpp-python has mtmd, an image. Skips
without node or the package."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.chats import WEATHER
from support.configs import model_toml, scripted_chats, tiny_chat
from support.families import QWEN3, QWEN25
from support.family import ANSWER, ARGUMENTS, REASONING
from support.node import NODE, installed
from support.scripted import build_scripted_gguf
from support.servers import Server, Servers
from support.tiny_vision import (
    IMAGE_TOKENS,
    build_tiny_vision_pair,
    mtmd_available,
    png_data_url,
)


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
    if mtmd_available():
        model, mmproj = build_tiny_vision_pair(folder / "vision")
        config += model_toml("eyes", "llama-cpp", str(model), threads=1, mmproj=str(mmproj))
    with servers.alone(config) as server:
        yield server


def test_the_npm_client_works_unchanged(js_server):
    installed("ollama")
    vision = mtmd_available()
    env = {**os.environ, "OLLAMA_HOST": js_server.url, "WEATHER": json.dumps(WEATHER)}
    if vision:
        env |= {"VISION_MODEL": "eyes", "IMAGE": png_data_url((200, 0, 0)).split(",")[1]}
    done = subprocess.run(
        ["node", str(NODE / "ollama_basics.mjs")],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["list"] == [
        *(["eyes:latest"] if vision else []),
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
    if vision:
        alone, seen = out["vision"]["alone"], out["vision"]["image"]
        assert seen["prompt_eval_count"] == alone["prompt_eval_count"] + IMAGE_TOKENS
        assert seen["content"]
