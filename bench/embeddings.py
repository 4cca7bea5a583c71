"""Embeddings: 256 concurrent one-sentence `/v1/embeddings` requests to MiniLM.

Two localoip servers, up together: the default config (requests micro-batched, and the
embedding model's default queue of 1024, so a burst of 256 is never turned away; the bench
counts any that are) and `max_batch_size = 1` (one sentence per encode). Baseline, in this
process: one batched `SentenceTransformer.encode` of the same 256 sentences. Runs
interleaved; prints throughput ratios (medians), and the CPU the client and the server spent
on each pass.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import aiohttp
from common import (
    MINILM,
    SETTLE,
    Figure,
    Server,
    cpu_seconds,
    localoip,
    median,
    model_path,
    model_toml,
    run,
    session,
)

SUBJECTS = ["The cat", "A young engineer", "My neighbour", "The old train", "A small bird"]
VERBS = ["watched", "repaired", "painted", "followed", "described"]
OBJECTS = ["the river at dawn", "a broken radio", "the quiet library", "two red kites"]


def sentences(count: int) -> list[str]:
    """Distinct short sentences of a few different lengths."""
    return [
        f"{SUBJECTS[i % 5]} {VERBS[i // 5 % 5]} {OBJECTS[i // 25 % 4]}"
        + " and then went home" * (i % 3)
        + f" on day {i}."
        for i in range(count)
    ]


@dataclass
class Burst:
    """One pass over the sentences: wall time, failures, and the CPU each side spent."""

    seconds: float
    failed: list[str] = field(default_factory=list)
    client_cpu: float = 0.0
    server_cpu: float = 0.0


async def requests(client: aiohttp.ClientSession, url: str, texts: list[str]) -> list[str]:
    """Send one request per sentence, all at once; why each that failed did."""

    async def one(text: str) -> str | None:
        body = {"model": "minilm", "input": text}
        try:
            async with client.post(url + "/v1/embeddings", json=body) as reply:
                if reply.status != 200:
                    return f"HTTP {reply.status}: {(await reply.read())[:100]!r}"
                return None if (await reply.json())["data"][0]["embedding"] else "no vector"
        except aiohttp.ClientError as exc:
            return f"{type(exc).__name__}: {exc}"

    return [why for why in await asyncio.gather(*(one(t) for t in texts)) if why]


async def burst(client: aiohttp.ClientSession, server: Server, texts: list[str]) -> Burst:
    server_cpu, client_cpu = cpu_seconds(server.process.pid), time.process_time()
    start = time.perf_counter()
    failed = await requests(client, server.url, texts)
    return Burst(
        time.perf_counter() - start,
        failed,
        time.process_time() - client_cpu,
        cpu_seconds(server.process.pid) - server_cpu,
    )


def measure(runs: int, requests: int) -> list[Figure]:
    from sentence_transformers import SentenceTransformer

    texts = sentences(requests)
    model = SentenceTransformer(model_path(MINILM), device="cpu")
    batched = model_toml("minilm", "sentence-transformers", MINILM)
    single = model_toml("minilm", "sentence-transformers", MINILM, max_batch_size=1)

    def in_process() -> Burst:
        start, cpu = time.perf_counter(), time.process_time()
        model.encode(texts, batch_size=32, normalize_embeddings=True)
        return Burst(time.perf_counter() - start, client_cpu=time.process_time() - cpu)

    async def timed_runs(ours: Server, alone: Server) -> dict[str, list[Burst]]:
        """Every target in turn, `runs` times; connections stay open between bursts."""
        async with session() as client:

            async def in_process_run() -> Burst:
                return in_process()  # blocks the loop, which has nothing else to do

            targets = {
                "in-process encode": in_process_run,
                "localoip batched": lambda: burst(client, ours, texts),
                "localoip max_batch_size=1": lambda: burst(client, alone, texts),
            }
            for run in targets.values():
                await run()  # warm up, and open the connections
            results: dict[str, list[Burst]] = {name: [] for name in targets}
            for _ in range(runs):
                for name, run in targets.items():
                    await asyncio.sleep(SETTLE)
                    results[name].append(await run())
            return results

    with localoip(batched, "batched") as ours, localoip(single, "unbatched") as alone:
        results = asyncio.run(timed_runs(ours, alone))

    rate = {name: requests / median(b.seconds for b in rows) for name, rows in results.items()}
    failed = {name: [why for b in rows for why in b.failed] for name, rows in results.items()}
    for name, rows in results.items():
        print(
            f"{name:26} {rate[name]:7.1f} sentences/s  failed {len(failed[name])}  CPU s per pass: "
            f"client {median(b.client_cpu for b in rows):.2f}, "
            f"server {median(b.server_cpu for b in rows):.2f}",
            flush=True,
        )
        for why in sorted(set(failed[name])):
            print(f"{'':26} {failed[name].count(why)} failed: {why}", flush=True)
    return [
        Figure("embeddings, in-process encode", rate["in-process encode"], "sentences/s"),
        Figure("embeddings, localoip batched", rate["localoip batched"], "sentences/s"),
        Figure("embeddings, localoip unbatched", rate["localoip max_batch_size=1"], "sentences/s"),
        Figure(
            "embeddings batched ÷ unbatched",
            rate["localoip batched"] / rate["localoip max_batch_size=1"],
            "x",
            ">= 3",
        ),
        Figure(
            "embeddings batched ÷ in-process encode",
            rate["localoip batched"] / rate["in-process encode"],
            "x",
            ">= 0.8",
        ),
        Figure(
            "embeddings failed requests",
            len(failed["localoip batched"]) + len(failed["localoip max_batch_size=1"]),
            "",
            "<= 0",
        ),
    ]


def main() -> None:
    run(__doc__, measure, runs=3, requests=256)


if __name__ == "__main__":
    main()
