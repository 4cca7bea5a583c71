"""Anthropic's JavaScript clients (installed by .ci/setup into tests/e2e/node) against a real
server, unchanged: `@anthropic-ai/sdk` (a message, a stream, a token count, the model list, an
unknown model and, where llama-cpp-python has mtmd, an image) and Claude Code run headless
(`claude -p`), whose turn with a tool call and its result completes with no protocol error.
Each skips without node or its package."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.configs import SCRIPTED_OPTIONS, model_toml, tiny_chat
from support.families import QWEN3, QWEN25
from support.family import ANSWER, CALL_REASONING
from support.node import NODE, installed
from support.scripted import Turn, build_scripted_gguf
from support.servers import Server, Servers
from support.tiny_models import build_tiny_gguf
from support.tiny_vision import (
    IMAGE_TOKENS,
    build_tiny_vision_pair,
    mtmd_available,
    png_data_url,
)

CLAUDE = NODE / "node_modules" / ".bin" / "claude"
CLAUDE_OPTIONS = ["--tools", "Read", "--allowedTools", "Read", "--output-format", "json"]
READER = {"n_ctx": 16384, "threads": 1, "prompt_chunk": 512, **SCRIPTED_OPTIONS}
CUE = "zephyrous"  # the forecast's word, which Claude Code's own prompt never holds


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The models, and a project folder with a forecast for Claude Code to read: scripted
    models that call Read on it, then answer once the result holds its word; Qwen2.5 calls
    at once, Qwen3 reasons first (a thinking block, which Claude Code sends back)."""
    folder = tmp_path_factory.mktemp("node-clients")
    build_tiny_gguf(folder / "tiny.gguf")
    forecast = folder / "project" / "forecast.txt"
    forecast.parent.mkdir()
    forecast.write_text(f"Paris: {CUE}\n")
    call = json.dumps({"name": "Read", "arguments": {"file_path": str(forecast)}})
    calling = f"<tool_call>\n{call}\n</tool_call>"
    for name, family, first in (
        ("reader", QWEN25, calling),
        ("thinking-reader", QWEN3, f"<think>\n{CALL_REASONING}\n</think>\n\n{calling}"),
    ):
        script = [first, Turn(ANSWER, cue=CUE)]
        build_scripted_gguf(folder / f"{name}.gguf", family=family, script=script, n_ctx=16384)
    return folder


@pytest.fixture(scope="module")
def server(servers: Servers, folder: Path) -> Iterator[Server]:
    # Claude Code's prompt is about 8,300 tokens of this byte-level vocabulary by its 2nd turn.
    readers = "".join(
        model_toml(name, "llama-cpp", f"{folder}/{name}.gguf", **READER)
        for name in ("reader", "thinking-reader")
    )
    config = tiny_chat(folder) + readers
    if mtmd_available():
        model, mmproj = build_tiny_vision_pair(folder / "vision")
        config += model_toml("eyes", "llama-cpp", str(model), threads=1, mmproj=str(mmproj))
    with servers.shared(servers.config(config, "node-clients")) as running:
        yield running


def test_the_javascript_sdk_s_basics_work_unchanged(server):
    installed("@anthropic-ai/sdk")
    vision = mtmd_available()
    image = {"VISION_MODEL": "eyes", "IMAGE": png_data_url((200, 0, 0)).split(",")[1]}
    done = subprocess.run(
        ["node", str(NODE / "anthropic_basics.mjs"), server.url, "tiny-chat"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **(image if vision else {})},
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert (out["create"]["type"], out["create"]["stop_reason"]) == ("message", "max_tokens")
    assert out["create"]["usage"]["output_tokens"] == 8
    assert out["stream"]["stop_reason"] == "max_tokens" and out["stream"]["text"]
    assert out["stream"]["events"][0] == "message_start"
    assert out["stream"]["events"][-1] == "message_stop"
    usage = out["create"]["usage"]
    assert out["count"] == usage["input_tokens"] + usage["cache_read_input_tokens"]
    models = ["tiny-chat", "reader", "thinking-reader"]
    assert out["models"] == models + (["eyes"] if vision else [])
    assert out["error"] == {"notFound": True, "status": 404, "type": "not_found_error"}
    if vision:
        alone, seen = out["vision"]["alone"], out["vision"]["image"]
        assert seen["prompt_tokens"] == alone["prompt_tokens"] + IMAGE_TOKENS
        assert seen["text"]


@pytest.mark.parametrize("model", ["reader", "thinking-reader"])
def test_claude_code_completes_a_turn_with_a_tool_call(server, folder, tmp_path, model):
    """Claude Code's whole prompt (its system prompt, a system reminder as a `system` message,
    the Read tool's schema: about 6,400 tokens), the call it runs, the result it sends back
    (after the model's thinking block, for the model that reasons)."""
    installed("@anthropic-ai/claude-code")
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),  # a fresh user: no settings, no login, no history
        "ANTHROPIC_BASE_URL": server.url,
        "ANTHROPIC_AUTH_TOKEN": "x",
        "ANTHROPIC_MODEL": model,
        "ANTHROPIC_SMALL_FAST_MODEL": model,
        "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    }
    done = subprocess.run(
        [str(CLAUDE), "-p", "What is the weather in Paris?", *CLAUDE_OPTIONS],
        cwd=folder / "project",
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = json.loads(done.stdout)
    assert (out["is_error"], out["result"], out["num_turns"]) == (False, ANSWER, 2), out
    assert "POST /v1/messages" in server.logs() and " 400 " not in server.logs()
