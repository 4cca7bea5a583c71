"""Stopping a model's streams, on its handle with a real runner: a stream cancelled while it
waits for the model's turn leaves the queue at once, a running one frees the model within a
token, and handle.idle() (what a playground Stop awaits) waits for stopped work only."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from localoip.app.core.config import load_settings
from localoip.app.core.models.handle import ModelHandle
from localoip.runtimes.capabilities import Capability, ChatMessage, ChatRequest, Sampling
from support.configs import model_toml


def request(max_tokens: int) -> ChatRequest:
    return ChatRequest([ChatMessage("user", "Tell me a story.")], Sampling(max_tokens, 0.7))


async def read(handle: ModelHandle, max_tokens: int, first: asyncio.Event) -> str:
    text = ""
    async for delta in handle.generate_stream(Capability.CHAT, request(max_tokens)):
        first.set()
        text += delta.text
    return text


async def stop(task: asyncio.Task[str]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.parametrize("runners", ["process", "in-process"])
def test_a_queued_stream_stopped_frees_its_place_and_idle_does_not_wait_behind_others(
    tiny_dir: Path, tmp_path: Path, runners: str
) -> None:
    config = tmp_path / "models.toml"
    config.write_text(
        model_toml("one", "llama-cpp", f"{tiny_dir}/slow.gguf", n_ctx=2048, threads=1, parallel=1)
    )
    handle = ModelHandle(load_settings(config).models[0], runners=runners)  # type: ignore[arg-type]

    async def run() -> None:
        await handle.load()
        try:
            started, never = asyncio.Event(), asyncio.Event()
            running = asyncio.create_task(read(handle, 1900, started))
            await asyncio.wait_for(started.wait(), 60)
            queued = asyncio.create_task(read(handle, 1900, never))
            while handle.turns.pending < 2:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.1)  # it waits for the model's turn
            await stop(queued)
            assert handle.turns.pending == 1 and not never.is_set()
            begun = time.monotonic()
            await asyncio.wait_for(handle.idle(), 5)  # nothing stopped is running
            assert time.monotonic() - begun < 1 and not running.done()
            await stop(running)
            await asyncio.wait_for(handle.idle(), 30)  # the runner stopped within a token
            assert handle.turns.running == 0 and not handle.turns.lock.locked()
            assert handle.turns.pending == 0
            after = asyncio.Event()
            assert await asyncio.wait_for(read(handle, 8, after), 60)
        finally:
            await handle.unload()

    asyncio.run(run())
