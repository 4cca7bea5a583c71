"""The kernels' ceiling for concurrent streams: one decode step of the batching engine's own
context at 1 row and at N rows, in this process, with no HTTP, no runner and no sampling.

On a CPU a step's cost is mostly the weights' dot products, and how much cheaper a row is
at N rows than alone depends on whether ggml has a batch (repacked or llamafile) kernel for
the weights' type: Q4_K, Q4_0 and IQ4_NL have one on x86, Q4_1 (SmolLM2's) has none. So
`tokens/s at N rows ÷ tokens/s at 1 row` bounds what N concurrent streams can reach against
one stream on this model, this machine and these threads: bench/concurrency.py prints it
beside its 8-stream figure, from the same run.

Each of the N sequences first holds `cells` tokens (a prompt and some text), the context is
sized and configured as the engine's (decode_step.engine_context: every slot at n_ctx, one
unified KV cache, the model's default flash attention), and the step time is the median of
`steps` steps.
"""

from __future__ import annotations

from common import SMOLLM2, Figure, median, model_path, run


def step_rates(
    path: str, threads: int, rows: tuple[int, ...], steps: int, n_ctx: int = 2048, cells: int = 200
) -> dict[int, float]:
    """Tokens/s of an engine decode step of each of `rows` rows (one token of as many
    sequences), on the GGUF at `path` with `threads` threads."""
    import llama_cpp
    from llama_cpp import _internals as internals
    from localoip.runtimes.llamacpp.decode_step import Step, engine_context
    from localoip.runtimes.llamacpp.kv import cache_arguments
    from localoip.runtimes.options import LlamaCppOptions

    defaults = LlamaCppOptions()
    llm = llama_cpp.Llama(
        model_path=path,
        n_ctx=n_ctx,
        n_threads=threads,
        n_threads_batch=threads,
        verbose=False,
        **cache_arguments(defaults.kv_cache_type, defaults.flash_attn),
    )
    most = max(rows)
    size = max(128, most)
    context = engine_context(llm, most * n_ctx, size, most)
    batch = internals.LlamaBatch(n_tokens=size, embd=0, n_seq_max=1, verbose=False)
    positions = [0] * most

    def step(n: int) -> float:
        """One step of one token for each of sequences 0 to n - 1: its seconds."""
        filled = Step(batch, size)
        for seq in range(n):
            filled.add([100 + seq], positions[seq], seq, 0)
            positions[seq] += 1
        return filled.decode(context.ctx)

    try:
        for _ in range(cells):
            step(most)
        return {n: n / median([step(n) for _ in range(steps)]) for n in rows}
    finally:
        batch.close()
        context.close()
        llm.close()


def ceiling(path: str, threads: int, steps: int = 30) -> list[Figure]:
    """The figures: an engine step's tokens/s at 1 and 8 rows, and their ratio."""
    rates = step_rates(path, threads, (1, 8), steps=steps)
    return [
        Figure("engine step, 1 row", rates[1], "tokens/s"),
        Figure("engine step, 8 rows", rates[8], "tokens/s"),
        Figure("engine step, 8 rows ÷ 1 row (8 streams' ceiling)", rates[8] / rates[1], "x"),
    ]


def measure(runs: int, threads: int) -> list[Figure]:
    return ceiling(model_path(SMOLLM2), threads, steps=runs)


if __name__ == "__main__":
    run(__doc__, measure, runs=30, threads=2)
