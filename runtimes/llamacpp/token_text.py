"""A generation's text as its tokens arrive: stop strings, the token limit, valid UTF-8.

Both llama.cpp paths (one at a time, and the batching engine) read tokens through this, so
they end on the same token with the same text. Unlike llama-cpp-python, the limit is exact:
a reply never has more tokens than max_tokens, even when the last one ends inside a
character; that character's bytes are dropped, so the text stays valid UTF-8.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable


class TokenText:
    """The text of one generation; `finish` is set once it has ended, and `stop_sequence` to
    the stop string that ended it, if one did."""

    def __init__(self, piece: Callable[[int], bytes], max_tokens: int, stop: list[str]) -> None:
        self._piece = piece
        self.max_tokens = max_tokens
        self._stop = [(s.encode(), s) for s in stop if s]
        self.generated = 0
        self.finish: str | None = None
        self.stop_sequence: str | None = None
        self._text = bytearray()
        self._sent = 0  # bytes handed out
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="ignore")

    def add(self, token: int) -> str:
        """Take a generated token (not an end-of-generation one); the text now certain."""
        self.generated += 1
        searched = len(self._text)
        self._text += self._piece(token)
        for stop, text in self._stop:
            at = self._text.find(stop, max(0, searched - len(stop) + 1))
            if at >= 0:
                self.stop_sequence = text
                return self.end("stop", at)
        if self.generated >= self.max_tokens:
            return self.end("length")
        return self._send(len(self._text) - self._held(), final=False)

    def end(self, reason: str, at: int | None = None) -> str:
        """End the generation (at byte `at`, or after all the text); the text still held."""
        self.finish = reason
        return self._send(len(self._text) if at is None else at, final=True)

    def _held(self) -> int:
        """Bytes at the end of the text that may begin a stop string."""
        held = 0
        for stop, _ in self._stop:
            for i in range(min(len(stop), len(self._text)), held, -1):
                if self._text.endswith(stop[:i]):
                    held = i
                    break
        return held

    def _send(self, end: int, final: bool) -> str:
        text = self._decoder.decode(bytes(self._text[self._sent : end]), final)
        self._sent = max(self._sent, end)
        return text
