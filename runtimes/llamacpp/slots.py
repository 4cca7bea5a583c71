"""The batching engine's KV slots: which sequence a prompt takes, and the tokens each holds.

Prefix reuse (llama-server's prompt cache, vLLM's prefix caching): a slot keeps its KV cells
after its generation ends, and the slots remember which tokens they hold. A new prompt takes
the longest prefix any slot holds, running ones included: in the unified KV cache a cell can
belong to several sequences, so `llama_memory_seq_cp` shares the prefix without copying it.
Only the rest of the prompt is read, so turn 5 of a chat does not re-read turns 1 to 4.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import llama_cpp
import numpy as np


def common_prefix(a: Sequence[int] | np.ndarray, b: Sequence[int]) -> int:
    """How many leading tokens two token sequences share."""
    n = min(len(a), len(b))
    if n == 0:
        return 0
    same = np.asarray(a[:n], np.intc) == np.asarray(b[:n], np.intc)
    return n if same.all() else int(np.argmin(same))


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

    def take(self, prompt: list[int]) -> tuple[int, int]:
        """Take a free slot for a prompt; also how many of its tokens the slot's KV now holds.

        The longest prefix any sequence holds is used, leaving at least the prompt's last token
        to read (its logits start the generation). The slot holding it is taken when free;
        otherwise the least recently used free slot, and the prefix is shared into it."""
        limit = len(prompt) - 1
        reused, source = 0, -1
        for seq, cached in enumerate(self.cached):
            n = common_prefix(cached, prompt[:limit])
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

    def forget(self, seq: int) -> None:
        """Drop what slot `seq` holds (after a failed step, none of it can be trusted)."""
        llama_cpp.llama_memory_seq_rm(self._mem, seq, -1, -1)
        self.cached[seq] = []
