"""Log-probabilities computed from the model's logits, as OpenAI defines them.

llama-cpp-python's own logprobs add the sampled token to the top k when it is not among
them (k + 1 alternatives), key alternatives by their text (tokens with the same text
collapse) and give tokens that end inside a UTF-8 character as "". Here each step's logits
are read as the sampler sees them, the sampled token gets its own logprob, the k most likely
tokens are the alternatives, and every token keeps its bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from localoip.runtimes.capabilities import TokenLogprob


def token_string(piece: bytes) -> str:
    """A token's text; bytes that are not a whole UTF-8 character appear as \\xNN escapes."""
    return piece.decode("utf-8", errors="backslashreplace")


class LogprobRecorder:
    """A llama-cpp-python logits processor that notes each step's log-probabilities.

    It changes nothing; `take(token)` turns the latest step into the sampled token's entry.
    """

    def __init__(self, k: int, piece: Callable[[int], bytes]) -> None:
        self.k = k
        self._piece = piece
        self._last: np.ndarray | None = None

    def __call__(self, input_ids: Any, scores: np.ndarray) -> np.ndarray:
        logits = np.asarray(scores, dtype=np.float64)
        top = logits.max()
        self._last = logits - (top + np.log(np.exp(logits - top).sum()))
        return scores

    def take(self, token: int) -> TokenLogprob:
        logprobs = self._last
        if logprobs is None:
            raise RuntimeError("no logits were seen before the token was sampled")
        ids: list[int] = []
        if self.k:
            k = min(self.k, len(logprobs))
            best = np.argpartition(-logprobs, k - 1)[:k]
            ids = [int(i) for i in best[np.argsort(-logprobs[best], kind="stable")]]
        pieces = [self._piece(i) for i in ids]
        piece = self._piece(token)
        return TokenLogprob(
            token_string(piece),
            float(logprobs[token]),
            tuple((token_string(p), float(logprobs[i])) for i, p in zip(ids, pieces, strict=True)),
            token_bytes=piece,
            top_bytes=tuple(pieces),
        )
