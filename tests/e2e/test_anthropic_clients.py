"""Anthropic's JavaScript SDK (`@anthropic-ai/sdk`, installed by .ci/setup into tests/e2e/node)
against a real server, unchanged: a message, a stream, a token count, the model list and an
unknown model. Skips without node or the package."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.configs import tiny_chat
from support.servers import Server, Servers
from support.tiny_models import build_tiny_gguf

NODE = Path(__file__).parent / "node"


@pytest.fixture(scope="module")
def server(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if shutil.which("node") is None or not (NODE / "node_modules" / "@anthropic-ai").is_dir():
        pytest.skip("no node, or no @anthropic-ai/sdk in tests/e2e/node (bash .ci/setup)")
    folder = tmp_path_factory.mktemp("node-clients")
    build_tiny_gguf(folder / "tiny.gguf")
    with servers.shared(servers.config(tiny_chat(folder), "node-clients")) as running:
        yield running


def test_the_javascript_sdk_s_basics_work_unchanged(server):
    done = subprocess.run(
        ["node", str(NODE / "anthropic_basics.mjs"), server.url, "tiny-chat"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
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
    assert out["models"] == ["tiny-chat"]
    assert out["error"] == {"notFound": True, "status": 404, "type": "not_found_error"}
