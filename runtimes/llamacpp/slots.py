"""The batching engine's KV slots: which sequence a prompt takes, and the tokens each holds.

Prefix reuse (llama-server's prompt cache, vLLM's prefix caching): a slot keeps its KV cells
after its generation ends, and the slots remember which tokens they hold. A new prompt takes
the longest prefix any slot holds, running ones included: in the unified KV cache a cell can
belong to several sequences, so `llama_memory_seq_cp` shares the prefix without copying it.
Only the rest of the prompt is read, so turn 5 of a chat does not re-read turns 1 to 4.

Images (llama-server's `server_tokens`): a prompt is compared as *keys*, one per position, a
text token's key being its id and an image's positions all holding a negative key made from
the image's hash (vision.py). The same text with another image never matches past the image,
the same image matches whole (and is not encoded again), and a prefix never ends inside an
image (`outside`): an image's cells are read whole by mtmd or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import llama_cpp
import numpy as np


def common_prefix(a: Sequence[int] | np.ndarray, b: Sequence[int]) -> int:
    """How many leading tokens (or keys: an image's are negative 64-bit) two sequences share."""
    n = min(len(a), len(b))
    if n == 0:
        return 0
    same = np.asarray(a[:n], np.int64) == np.asarray(b[:n], np.int64)
    return n if same.all() else int(np.argmin(same))


@dataclass(frozen=True, slots=True)
class Span:
    """An image's positions in a prompt, [start, end), and which of mtmd's chunks it is."""

    start: int
    end: int
    chunk: int


def outside(n: int, spans: Sequence[Span]) -> int:
    """`n` moved back to the start of an image it falls inside: a prefix of `n` positions that
    keeps no part of an image."""
    for span in spans:
        if span.start < n < span.end:
            return span.start
    return n


def aligned(limit: int, chunk: int, *plans: Sequence[Span]) -> int:
    """The longest prefix, at most `limit`, that ends where a batch ends in each of the given
    prompts' reading plans (serial.py reads text in `chunk`-token batches aligned to absolute
    positions, and each image whole): a multiple of `chunk` or an image's start or end that
    lies inside no image of any plan, and is an image edge or a multiple in each."""
    edges = set(range(0, limit + 1, chunk)) | {
        edge for plan in plans for s in plan for edge in (s.start, s.end) if edge <= limit
    }
    for n in sorted(edges, reverse=True):
        if all(_ends_batch(n, chunk, plan) for plan in plans):
            return n
    return 0


def _ends_batch(n: int, chunk: int, plan: Sequence[Span]) -> bool:
    if outside(n, plan) != n:
        return False
    return n % chunk == 0 or any(n in (s.start, s.end) for s in plan)


class Slots:
    """`count` KV sequences (0 to count - 1) of a context's memory `mem`: free or taken, and
    the tokens each one's cells hold from position 0 (`cached`, kept after a generation ends
    for the next prompt that starts the same way)."""

    def __init__(self, mem: Any, count: int) -> None:
        self._mem = mem
        self._free = list(range(count - 1, -1, -1))
        self.cached: list[list[int]] = [[] for _ in range(count)]
        self._last_used = [0] * count  # when each slot was last taken, for least-recently-used
        self._taken = 0

    @property
    def free(self) -> int:
        """How many slots are free."""
        return len(self._free)

    def take(self, prompt: list[int], spans: Sequence[Span] = ()) -> tuple[int, int]:
        """Take a free slot for a prompt (its keys, with its images' `spans`); also how many of
        its positions the slot's KV now holds.

        The longest prefix any sequence holds is used, leaving at least the prompt's last token
        to read (its logits start the generation) and no part of an image. The slot holding it
        is taken when free; otherwise the least recently used free slot, and the prefix is
        shared into it."""
        limit = len(prompt) - 1
        reused, source = 0, -1
        for seq, cached in enumerate(self.cached):
            n = outside(common_prefix(cached, prompt[:limit]), spans)
            if n > reused:
                reused, source = n, seq
        free = self._free
        seq = source if source in free else min(free, key=self._last_used.__getitem__)
        self._free.remove(seq)
        self._taken += 1
        self._last_used[seq] = self._taken
        if seq == source:
            llama_cpp.llama_memory_seq_rm(self._mem, seq, reused, -1)
        else:
            llama_cpp.llama_memory_seq_rm(self._mem, seq, -1, -1)
            if reused:
                llama_cpp.llama_memory_seq_cp(self._mem, source, seq, 0, reused)
        self.cached[seq] = prompt[:reused]
        return seq, reused

    def give_back(self, seq: int) -> None:
        """Free slot `seq`; its KV cells stay for a prompt that reuses them."""
        self._free.append(seq)

    def trim(self, seq: int, keep: int) -> None:
        """Remove slot `seq`'s cells from position `keep` on (a draft's that was not kept)."""
        llama_cpp.llama_memory_seq_rm(self._mem, seq, keep, -1)
        del self.cached[seq][keep:]

    def forget(self, seq: int) -> None:
        """Drop what slot `seq` holds (after a failed step, none of it can be trusted)."""
        llama_cpp.llama_memory_seq_rm(self._mem, seq, -1, -1)
        self.cached[seq] = []
