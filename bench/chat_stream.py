"""Streamed chat: localoip's `/v1` vs llama-cpp-python in-process and vs `llama_cpp.server`.

Same GGUF (SmolLM2, the default chat model), same threads, same greedy request, one stream
at a time, runs interleaved. The in-process baseline lives in this process and is always
called from its main thread: a `Llama` called from another thread than the one that first
used it decodes about 2x slower on this machine (each thread gets its own OpenMP team).
Prints decode tokens/s ratios (medians), the time-to-first-token overhead (p50), and the CPU
time the `localoip serve` process (not its runner) spends per streamed token (median): the
server's own work, which neighbours on a shared machine disturb far less than wall time.
With --parallel 1 localoip's model has no batching engine: the stream takes the serial path
(the model's turn, then the runner's reply straight to the event loop); the default, 0,
leaves `parallel` to the model's config ("auto", the engine on a CPU).
"""

from __future__ import annotations

import asyncio
import time

from common import (
    SETTLE,
    SMOLLM2,
    Figure,
    Stream,
    chat_body,
    cpu_seconds,
    llama_cpp_server,
    local_stream,
    localoip,
    median,
    model_path,
    model_toml,
    run,
    session,
    stream_chat,
)

PROMPT = "Write a long story about a lighthouse keeper."


def measure(runs: int, max_tokens: int, threads: int, parallel: int) -> list[Figure]:
    import llama_cpp

    path = model_path(SMOLLM2)
    llm = llama_cpp.Llama(model_path=path, n_ctx=2048, n_threads=threads, verbose=False)
    slots = {"parallel": parallel} if parallel else {}
    config = model_toml("smollm2", "llama-cpp", SMOLLM2, n_ctx=2048, threads=threads, **slots)

    def in_process(tokens: int) -> Stream:
        start = time.perf_counter()
        chunks = llm.create_chat_completion(
            messages=[{"role": "user", "content": PROMPT}],
            max_tokens=tokens,
            temperature=0.0,
            stream=True,
        )
        return local_stream(chunks, start)

    server_cpu: list[float] = []  # ms of the server process's CPU per streamed token, each run

    async def timed_runs(ours: str, ours_pid: int, peer: str) -> dict[str, list[Stream]]:
        """Every target in turn, `runs` times, over kept-alive connections."""
        async with session() as client:

            async def in_process_run(tokens: int) -> Stream:
                return in_process(tokens)  # blocks the loop, which has nothing else to do

            targets = {
                "in-process": in_process_run,
                "localoip": lambda n: stream_chat(client, ours, chat_body("smollm2", PROMPT, n)),
                "llama_cpp.server": lambda n: stream_chat(client, peer, chat_body(path, PROMPT, n)),
            }
            results: dict[str, list[Stream]] = {name: [] for name in targets}
            for run in targets.values():
                await run(8)  # warm each one up
            for _ in range(runs):
                for name, run in targets.items():
                    await asyncio.sleep(SETTLE)
                    cpu = cpu_seconds(ours_pid)
                    stream = await run(max_tokens)
                    if stream.error:
                        raise RuntimeError(f"{name}: {stream.error}")
                    results[name].append(stream)
                    if name == "localoip":
                        server_cpu.append(1e3 * (cpu_seconds(ours_pid) - cpu) / stream.tokens)
            return results

    with localoip(config) as ours, llama_cpp_server(path, threads) as peer:
        results = asyncio.run(timed_runs(ours.url, ours.process.pid, peer.url))
    llm.close()

    rate = {name: median(s.decode_rate for s in rows) for name, rows in results.items()}
    ttft = {name: median(s.ttft for s in rows) * 1e3 for name, rows in results.items()}
    for name in results:
        tokens = sorted({s.tokens for s in results[name]})
        print(
            f"{name:18} {rate[name]:6.1f} tokens/s  TTFT p50 {ttft[name]:6.1f} ms  tokens {tokens}",
            flush=True,
        )
    return [
        Figure("chat decode, in-process", rate["in-process"], "tokens/s"),
        Figure("chat decode, localoip", rate["localoip"], "tokens/s"),
        Figure("chat decode, llama_cpp.server", rate["llama_cpp.server"], "tokens/s"),
        Figure(
            "chat decode localoip ÷ in-process",
            rate["localoip"] / rate["in-process"],
            "x",
            ">= 0.98",
        ),
        Figure(
            "chat decode localoip ÷ llama_cpp.server",
            rate["localoip"] / rate["llama_cpp.server"],
            "x",
            ">= 1.0",
        ),
        Figure(
            "TTFT overhead localoip - in-process (p50)",
            ttft["localoip"] - ttft["in-process"],
            "ms",
            "<= 10",
        ),
        Figure(
            "TTFT overhead llama_cpp.server - in-process (p50)",
            ttft["llama_cpp.server"] - ttft["in-process"],
            "ms",
        ),
        Figure("server CPU per streamed token, localoip", median(server_cpu), "ms"),
    ]


def main() -> None:
    run(__doc__, measure, runs=5, max_tokens=128, threads=2, parallel=0)


if __name__ == "__main__":
    main()
