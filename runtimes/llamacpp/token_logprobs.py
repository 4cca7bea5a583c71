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


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Log-probabilities of each row of logits (float64)."""
    logits = np.asarray(logits, dtype=np.float64)
    top = logits.max(axis=-1, keepdims=True)
    return logits - (top + np.log(np.exp(logits - top).sum(axis=-1, keepdims=True)))


def entry(logprobs: np.ndarray, token: int, k: int, piece: Callable[[int], bytes]) -> TokenLogprob:
    """`token`'s entry in a step whose log-probabilities are `logprobs`: its own logprob and
    the k most likely tokens (ties in id order), each with its bytes."""
    ids: list[int] = []
    if k:
        k = min(k, len(logprobs))
        best = np.argpartition(-logprobs, k - 1)[:k]
        ids = [int(i) for i in best[np.argsort(-logprobs[best], kind="stable")]]
    pieces = [piece(i) for i in ids]
    own = piece(token)
    return TokenLogprob(
        token_string(own),
        float(logprobs[token]),
        tuple((token_string(p), float(logprobs[i])) for i, p in zip(ids, pieces, strict=True)),
        token_bytes=own,
        top_bytes=tuple(pieces),
    )


def unpredicted(token: int, piece: Callable[[int], bytes]) -> TokenLogprob:
    """The entry of a first prompt token: nothing predicts it, so its logprob is None and it
    has no alternatives (as OpenAI's echo answers)."""
    own = piece(token)
    return TokenLogprob(token_string(own), None, token_bytes=own)


class LogprobRecorder:
    """A llama-cpp-python logits processor that notes each step's log-probabilities.

    It changes nothing; `take(token)` turns the latest step into the sampled token's entry.
    """

    def __init__(self, k: int, piece: Callable[[int], bytes]) -> None:
        self.k = k
        self._piece = piece
        self._last: np.ndarray | None = None

    def __call__(self, input_ids: Any, scores: np.ndarray) -> np.ndarray:
        self._last = log_softmax(scores)
        return scores

    def take(self, token: int) -> TokenLogprob:
        if self._last is None:
            raise RuntimeError("no logits were seen before the token was sampled")
        return entry(self._last, token, self.k, self._piece)
