"""What each KV-cache type (`kv_cache_type`) costs and saves on the default models.toml's
llama.cpp models, SmolLM2-135M and gemma3-270m, in this process on the runtime itself
(serial path, `parallel = 1`, `--threads` 2 unless given, n_ctx 8192):

- the cache a long prompt's sequence holds, as llama.cpp reports it
  (`llama_state_seq_get_size`: its cells' keys and values in the cache's type);
- the resident memory the load adds (RSS after load and warm-up, minus before);
- decode tokens/s after a ~1500-token prompt (greedy, 64 tokens, streamed).

Types run interleaved, and each figure is a ratio to f16 from the same run, so a shared
machine slows them alike. Last, what `n_ctx = "auto"` chooses for each model here, with
`parallel = "auto"` and f16, and why.
"""

from __future__ import annotations

import os
import time

import llama_cpp
from common import GEMMA3, SMOLLM2, Figure, median, model_path, run
from localoip.runtimes.capabilities import CompletionRequest, Sampling
from localoip.runtimes.llamacpp.runtime import LlamaCppRuntime
from localoip.runtimes.options import LlamaCppOptions

MODELS = {"smollm2": SMOLLM2, "gemma3": GEMMA3}
TYPES = ("f16", "q8_0", "q4_0")
ANIMALS = ("cat", "dog", "horse", "owl", "fox", "bee", "crow", "seal", "goat", "wolf")
PLACES = ("river", "hill", "market", "forest", "harbour", "garden", "bridge", "field")


def diary(lines: int) -> str:
    """Varied text, so the model does not just repeat it: ~14 tokens a line."""
    return "\n".join(
        f"On day {i}, a {ANIMALS[i % 10]} walked to the {PLACES[i * 3 % 8]} and counted "
        f"{i * 7 % 13} stones."
        for i in range(lines)
    )


def rss() -> int:
    """This process's resident bytes."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def once(path: str, kv_type: str, prompt: str, max_tokens: int, threads: int) -> dict[str, float]:
    """One load in `kv_type`, one long prompt and its decode: the figures of this run."""
    before = rss()
    runtime = LlamaCppRuntime(
        path, LlamaCppOptions(n_ctx=8192, threads=threads, parallel=1, kv_cache_type=kv_type)
    )
    runtime.load()
    try:
        loaded = rss() - before
        stamps: list[float] = []
        usage = (0, 0)
        request = CompletionRequest(prompt, Sampling(temperature=0, max_tokens=max_tokens))
        for delta in runtime.complete_stream(request):
            stamps.append(time.perf_counter())
            usage = delta.usage or usage
        cells = llama_cpp.llama_state_seq_get_size(runtime.llm.ctx, 0)
        return {
            "prompt": usage[0],
            "cache": cells,
            "rss": loaded,
            "rate": (len(stamps) - 2) / (stamps[-2] - stamps[0]),  # the last holds only usage
        }
    finally:
        runtime.unload()


def auto_context(path: str) -> tuple[int, int | None, str, str]:
    """What `n_ctx = "auto"` chooses here (f16, `parallel = "auto"`): the context, the
    trained one, why, and the slots."""
    runtime = LlamaCppRuntime(path, LlamaCppOptions(n_ctx="auto", warmup=False))
    runtime.load()
    try:
        facts = runtime.facts()
        assert facts.context_length is not None
        return (
            facts.context_length,
            facts.trained_context_length,
            runtime.context_sized,
            (runtime.slots_reason),
        )
    finally:
        runtime.unload()


def measure(runs: int, lines: int, max_tokens: int, threads: int) -> list[Figure]:
    prompt = diary(lines)
    figures = []
    for name, source in MODELS.items():
        path = model_path(source)
        seen: dict[str, list[dict[str, float]]] = {t: [] for t in TYPES}
        for _ in range(runs):
            for kv_type in TYPES:
                seen[kv_type].append(once(path, kv_type, prompt, max_tokens, threads))
        f16 = {key: median(r[key] for r in seen["f16"]) for key in ("cache", "rss", "rate")}
        tokens = int(seen["f16"][0]["prompt"])
        figures += [
            Figure(f"{name}: f16 cache of a {tokens}-token sequence, MiB", f16["cache"] / 2**20),
            Figure(f"{name}: f16 load's RSS, MiB", f16["rss"] / 2**20),
            Figure(f"{name}: f16 decode after {tokens} tokens, tokens/s", f16["rate"]),
        ]
        for kv_type in TYPES[1:]:
            runs_of = seen[kv_type]
            figures += [
                Figure(
                    f"{name}: {kv_type} ÷ f16, cache of the sequence",
                    median(r["cache"] for r in runs_of) / f16["cache"],
                    "x",
                ),
                Figure(
                    f"{name}: {kv_type} ÷ f16, load's RSS",
                    median(r["rss"] for r in runs_of) / f16["rss"],
                    "x",
                ),
                Figure(
                    f"{name}: {kv_type} ÷ f16, decode tokens/s",
                    median(r["rate"] for r in runs_of) / f16["rate"],
                    "x",
                ),
            ]
        chosen, trained, why, slots = auto_context(path)
        print(f"{name}: n_ctx auto = {chosen} of {trained} ({why}); parallel {slots}", flush=True)
        figures.append(Figure(f'{name}: n_ctx "auto" chose', chosen))
    return figures


if __name__ == "__main__":
    run(__doc__, measure, runs=2, lines=80, max_tokens=64, threads=2)
