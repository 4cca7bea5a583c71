"""OIP infer overhead: one short sentence embedded through `POST /v2/models/minilm/infer`.

The baseline, in this process: `SentenceTransformer.encode` of the same sentence. The calls
alternate, one at a time, the server's over one kept-alive connection. Prints p50 of each
and the overhead, p50 server - p50 in-process, in ms; and the CPU time the `localoip serve`
process (not its runner) spends per call, which a shared machine disturbs far less.
"""

from __future__ import annotations

import asyncio
import time

from common import (
    MINILM,
    Figure,
    cpu_seconds,
    localoip,
    median,
    model_path,
    model_toml,
    run,
    session,
)

SENTENCE = "A short sentence to embed."
BODY = {"inputs": [{"name": "input", "shape": [1], "datatype": "BYTES", "data": [SENTENCE]}]}


def measure(runs: int) -> list[Figure]:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(model_path(MINILM), device="cpu")
    config = model_toml("minilm", "sentence-transformers", MINILM)

    server_cpu: list[float] = []  # seconds of the server process's CPU over all served calls

    async def timed_calls(url: str, pid: int) -> tuple[list[float], list[float]]:
        """(in-process seconds, served seconds) of alternating calls, one connection."""
        local: list[float] = []
        served: list[float] = []
        async with session(1) as client:

            async def infer() -> None:
                async with client.post(url + "/v2/models/minilm/infer", json=BODY) as reply:
                    answer = await reply.json(content_type=None)
                if reply.status != 200 or answer["outputs"][0]["shape"] != [1, 384]:
                    raise RuntimeError(f"unexpected reply {reply.status}: {answer}")

            for _ in range(5):  # warm up
                await infer()
                model.encode([SENTENCE], normalize_embeddings=True)
            cpu = cpu_seconds(pid)
            for _ in range(runs):
                start = time.perf_counter()
                await infer()
                served.append(time.perf_counter() - start)
                start = time.perf_counter()
                model.encode([SENTENCE], normalize_embeddings=True)
                local.append(time.perf_counter() - start)
            server_cpu.append(cpu_seconds(pid) - cpu)
        return local, served

    with localoip(config) as server:
        local, served = asyncio.run(timed_calls(server.url, server.process.pid))
    ms_local, ms_served = median(local) * 1e3, median(served) * 1e3
    print(
        f"in-process encode p50 {ms_local:6.2f} ms, OIP infer p50 {ms_served:6.2f} ms", flush=True
    )
    return [
        Figure("one sentence, in-process encode (p50)", ms_local, "ms"),
        Figure("one sentence, OIP /infer (p50)", ms_served, "ms"),
        Figure("OIP infer overhead (p50)", ms_served - ms_local, "ms", "<= 3"),
        Figure("server CPU per OIP infer call", server_cpu[0] * 1e3 / runs, "ms"),
    ]


def main() -> None:
    run(__doc__, measure, runs=200)


if __name__ == "__main__":
    main()
