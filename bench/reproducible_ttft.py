"""What reproducible prompts cost in time to first token: aligned chunks vs llama-cpp-python.

localoip reads every prompt in chunks of `prompt_chunk` (64) tokens at fixed positions and
reuses a cached prefix only up to such a boundary, so a seeded request gives the same text
whatever the cache holds. llama-cpp-python reuses every cached token and reads the rest in one
batch, which is faster and not reproducible. Both run here in-process on the same GGUF, in turn:

- a growing conversation (each prompt extends the last by one turn, as agents do): the
  aligned reuse re-reads up to 63 cached tokens;
- a fresh prompt (nothing cached): 64-token chunks against one batch of up to 512.

Prints medians and the ratios localoip ÷ llama-cpp-python (1.0 = no cost).
"""

from __future__ import annotations

import time

from common import SMOLLM2, Figure, arguments, median, model_path, report

TURN = "Tell me one more thing about lighthouses, briefly. "
BASE = "You are a patient guide. " * 12


def measure(runs: int, threads: int) -> list[Figure]:
    import llama_cpp
    from localoip.runtimes.base import CompletionRequest, Sampling
    from localoip.runtimes.llamacpp import LlamaCppRuntime
    from localoip.runtimes.options import LlamaCppOptions

    path = model_path(SMOLLM2)
    ours = LlamaCppRuntime(path, LlamaCppOptions(n_ctx=2048, threads=threads, seed=1))
    ours.load()
    theirs = llama_cpp.Llama(model_path=path, n_ctx=2048, n_threads=threads, verbose=False)
    first = Sampling(max_tokens=1, seed=1)

    def ours_ttft(prompt: str) -> float:
        start = time.perf_counter()
        ours.complete(CompletionRequest(prompt, first))
        return time.perf_counter() - start

    def theirs_ttft(prompt: str) -> float:
        start = time.perf_counter()
        theirs.create_completion(prompt, max_tokens=1, seed=1)
        return time.perf_counter() - start

    growing = {"ours": [], "theirs": []}
    fresh = {"ours": [], "theirs": []}
    for run in range(runs):
        prompt = f"{run} {BASE}"
        for _ in range(8):  # one conversation: each turn extends the cached prompt
            prompt += TURN
            growing["ours"].append(ours_ttft(prompt))
            growing["theirs"].append(theirs_ttft(prompt))
        for name, ttft in (("ours", ours_ttft), ("theirs", theirs_ttft)):
            ttft(f"unrelated {run}")  # nothing of the next prompt is cached
            fresh[name].append(ttft(f"{run} fresh {BASE}{TURN * 4}"))
    ours.unload()
    g = {k: median(v) * 1000 for k, v in growing.items()}
    f = {k: median(v) * 1000 for k, v in fresh.items()}
    return [
        Figure("growing prompt, time to first token, localoip (aligned)", g["ours"], "ms"),
        Figure("growing prompt, time to first token, llama-cpp-python", g["theirs"], "ms"),
        Figure("growing prompt, localoip ÷ llama-cpp-python", g["ours"] / g["theirs"]),
        Figure("fresh prompt, time to first token, localoip (64-token chunks)", f["ours"], "ms"),
        Figure("fresh prompt, time to first token, llama-cpp-python", f["theirs"], "ms"),
        Figure("fresh prompt, localoip ÷ llama-cpp-python", f["ours"] / f["theirs"]),
    ]


def main() -> None:
    parser = arguments(__doc__, runs=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    report(measure(args.runs, args.threads), args.json)


if __name__ == "__main__":
    main()
