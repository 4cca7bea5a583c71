"""What reproducible prompts cost in time to first token: aligned chunks vs llama-cpp-python.

localoip reads every prompt in chunks of `prompt_chunk` (16) tokens at fixed positions and
reuses a cached prefix only up to such a boundary, so a seeded request gives the same text
whatever the cache holds. llama-cpp-python reuses every cached token and reads the rest in one
batch, which is faster and not reproducible. Both run here in-process on the same GGUF, in turn:

- a growing conversation (each prompt extends the last by one turn, as agents do): the
  aligned reuse re-reads up to `prompt_chunk - 1` cached tokens;
- a fresh prompt (nothing cached): `prompt_chunk`-token chunks against one batch of up to 512.

`--chunks 16,32,64` measures localoip at each `prompt_chunk` in the same run. Prints medians
and the ratios localoip ÷ llama-cpp-python (1.0 = no cost).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from common import SMOLLM2, Figure, arguments, median, model_path, report

TURN = "Tell me one more thing about lighthouses, briefly. "
BASE = "You are a patient guide. " * 12


def measure(runs: int, threads: int, chunks: list[int]) -> list[Figure]:
    import llama_cpp
    from localoip.runtimes.capabilities import CompletionRequest, Sampling
    from localoip.runtimes.llamacpp.runtime import LlamaCppRuntime
    from localoip.runtimes.options import LlamaCppOptions

    path = model_path(SMOLLM2)
    ours = {}
    for chunk in chunks:
        options = LlamaCppOptions(n_ctx=2048, threads=threads, seed=1, prompt_chunk=chunk)
        ours[chunk] = LlamaCppRuntime(path, options)
        ours[chunk].load()
    theirs = llama_cpp.Llama(model_path=path, n_ctx=2048, n_threads=threads, verbose=False)
    first = Sampling(max_tokens=1, seed=1)

    def timed(run: Callable[[], object]) -> float:
        start = time.perf_counter()
        run()
        return time.perf_counter() - start

    def ttft(name: str | int, prompt: str) -> float:
        if name == "theirs":
            return timed(lambda: theirs.create_completion(prompt, max_tokens=1, seed=1))
        return timed(lambda: ours[name].complete(CompletionRequest(prompt, first)))

    names: list[str | int] = ["theirs", *chunks]
    growing: dict[str | int, list[float]] = {name: [] for name in names}
    fresh: dict[str | int, list[float]] = {name: [] for name in names}
    for run in range(runs):
        prompt = f"{run} {BASE}"
        for _ in range(8):  # one conversation: each turn extends the cached prompt
            prompt += TURN
            for name in names:
                growing[name].append(ttft(name, prompt))
        for name in names:
            ttft(name, f"unrelated {run}")  # nothing of the next prompt is cached
            fresh[name].append(ttft(name, f"{run} fresh {BASE}{TURN * 4}"))
    for runtime in ours.values():
        runtime.unload()
    g = {k: median(v) * 1000 for k, v in growing.items()}
    f = {k: median(v) * 1000 for k, v in fresh.items()}
    figures = [
        Figure("growing prompt, time to first token, llama-cpp-python", g["theirs"], "ms"),
        Figure("fresh prompt, time to first token, llama-cpp-python", f["theirs"], "ms"),
    ]
    for chunk in chunks:
        figures += [
            Figure(
                f"growing prompt, time to first token, localoip (chunk {chunk})", g[chunk], "ms"
            ),
            Figure(
                f"growing prompt, localoip (chunk {chunk}) ÷ llama-cpp-python",
                g[chunk] / g["theirs"],
            ),
            Figure(f"fresh prompt, time to first token, localoip (chunk {chunk})", f[chunk], "ms"),
            Figure(
                f"fresh prompt, localoip (chunk {chunk}) ÷ llama-cpp-python", f[chunk] / f["theirs"]
            ),
        ]
    return figures


def main() -> None:
    parser = arguments(__doc__, runs=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--chunks", default="16", help="prompt_chunk values, comma-separated")
    args = parser.parse_args()
    chunks = [int(c) for c in args.chunks.split(",")]
    report(measure(args.runs, args.threads, chunks), args.json)


if __name__ == "__main__":
    main()
