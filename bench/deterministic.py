"""Reproducible greedy output: how often the same greedy request gives other text without
`deterministic`, and what `deterministic` costs.

One localoip server with gemma3-270m (the quantized model whose greedy text drifts) on the
default engine (`parallel = 4`, 1 thread). The tests' scenario (tests/support/deterministic.py):
7 prompts, each as a greedy 24-token completion alone, after a cache hit, and beside 3 other
greedy requests; counted with and without `deterministic`. The cost: 4 concurrent greedy
chat streams of 64 tokens with `deterministic` (run one at a time) against the same 4
batched, aggregate tokens/s, the rounds interleaved.
"""

from __future__ import annotations

import asyncio
import time

from common import GEMMA3, Figure, localoip, median, model_toml, run, session, stream_chat
from concurrency import PROMPTS
from openai import AsyncOpenAI
from support.deterministic import Repeats, repeats


def differing(seen: Repeats) -> tuple[int, int]:
    """(prompts whose text after a cache hit differs from alone, those differing beside others)."""
    cached = sum(a != b for a, b in zip(seen.alone, seen.cached, strict=True))
    return cached, sum(a != b for a, b in zip(seen.alone, seen.shared, strict=True))


async def rates(url: str, runs: int, max_tokens: int) -> tuple[float, float]:
    """(batched, deterministic): median aggregate tokens/s of 4 concurrent greedy streams."""
    out: dict[bool, list[float]] = {False: [], True: []}
    async with session() as client:
        for _ in range(runs):
            for deterministic in (False, True):
                start = time.perf_counter()
                bodies = [
                    {
                        "model": "gemma3",
                        "messages": [{"role": "user", "content": PROMPTS[i]}],
                        "max_tokens": max_tokens,
                        "temperature": 0,
                        "stream": True,
                        "deterministic": deterministic,
                    }
                    for i in range(4)
                ]
                streams = await asyncio.gather(*(stream_chat(client, url, b) for b in bodies))
                elapsed = time.perf_counter() - start
                out[deterministic].append(sum(s.tokens for s in streams) / elapsed)
    return median(out[False]), median(out[True])


def measure(runs: int, max_tokens: int) -> list[Figure]:
    config = model_toml("gemma3", "llama-cpp", GEMMA3, n_ctx=2048, threads=1, parallel=4)

    async def both(url: str) -> tuple[Repeats, Repeats]:
        client = AsyncOpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
        return await repeats(client, "gemma3", None), await repeats(client, "gemma3", True)

    with localoip(config, "deterministic") as server:
        seen, seen_exact = asyncio.run(both(server.url))
        plain, exact = differing(seen), differing(seen_exact)
        batched, alone = asyncio.run(rates(server.url, runs, max_tokens))
    print(
        f"greedy, differing of 7 (cache hit, beside others): plain {plain}, deterministic {exact}"
    )
    return [
        Figure("greedy without deterministic: differs after a cache hit (of 7)", plain[0]),
        Figure("greedy without deterministic: differs beside 3 others (of 7)", plain[1]),
        Figure("deterministic: differs after a cache hit (of 7)", exact[0], "", "<= 0"),
        Figure("deterministic: differs beside 3 others (of 7)", exact[1], "", "<= 0"),
        Figure("4 deterministic streams ÷ 4 batched, tokens/s", alone / batched, "x"),
    ]


if __name__ == "__main__":
    run(__doc__, measure, runs=2, max_tokens=64)
