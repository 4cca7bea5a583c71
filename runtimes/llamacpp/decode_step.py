"""What the batching engine and its draft model share: a context of their own on loaded
weights, and one decode step's batch as it is filled."""

from __future__ import annotations

import time
from typing import Any

import llama_cpp
from llama_cpp import Llama
from llama_cpp import _internals as internals
from llama_cpp._utils import suppress_stdout_stderr


def engine_context(
    llm: Llama,
    n_ctx: int,
    batch_tokens: int,
    slots: int,
    model: internals.LlamaModel | None = None,
) -> internals.LlamaContext:
    """A context of the engine's on `model`'s weights (`llm`'s unless given): the serial
    context's settings (threads, attention, KV types) so the numbers agree, `n_ctx` cells
    (every slot at the full context, so no sequence is ever cut short), `batch_tokens` a step
    and `slots` sequences in one unified KV cache."""
    params = llama_cpp.llama_context_params.from_buffer_copy(llm.context_params)
    params.n_ctx = n_ctx
    params.n_batch = params.n_ubatch = batch_tokens
    params.n_seq_max = slots
    # Every step is a batch; use the model's `threads` for them, not Llama's all-cores
    # default for prompt batches, which contends with the serial path and other models.
    params.n_threads_batch = params.n_threads
    params.kv_unified = True
    weights = model if model is not None else llm._model
    with suppress_stdout_stderr(disable=False):  # llama.cpp's notes, as Llama's own load
        return internals.LlamaContext(model=weights, params=params, verbose=False)


class Step:
    """One decode step's batch as it is filled, and the outputs to sample after it: each a
    sequence, the index of its first output, and the draft that follows it."""

    def __init__(self, batch: internals.LlamaBatch, size: int) -> None:
        self._batch = batch.batch
        self._size = size
        self.n = 0
        self.outputs: list[tuple[Any, int, list[int]]] = []

    @property
    def room(self) -> int:
        """Tokens the step can still take."""
        return self._size - self.n

    def add(self, tokens: list[int], start: int, seq: int, first_output: int) -> None:
        """Put `tokens` at positions from `start` of sequence `seq`, with logits from the
        `first_output`-th on (-1: none)."""
        batch = self._batch
        for i, token in enumerate(tokens):
            n = self.n + i
            batch.token[n], batch.pos[n], batch.seq_id[n][0] = token, start + i, seq
            batch.n_seq_id[n], batch.logits[n] = 1, 0 <= first_output <= i
        self.n += len(tokens)

    def decode(self, ctx: Any) -> float:
        """Decode the step: the seconds it took; RuntimeError when llama.cpp cannot."""
        self._batch.n_tokens = self.n
        started = time.perf_counter()
        code = llama_cpp.llama_decode(ctx, self._batch)
        if code != 0:
            raise RuntimeError(f"llama_decode returned {code}")
        return time.perf_counter() - started
