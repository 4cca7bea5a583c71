"""A generation's deltas read as a reply in a family's format: each delta's text split into
reasoning, answer and call pieces; the last delta carries the whole calls, the finish reason
`tool_calls` when there are calls, and the count of reasoning tokens."""

from __future__ import annotations

from dataclasses import replace

from localoip.runtimes.capabilities import TextDelta
from localoip.runtimes.llamacpp.formats.reader import ReplyReader


class ReplyDeltas:
    """Reads a reply's deltas as they stream, with a ReplyReader (its format, tools, whether
    the prompt opened the reasoning, whether calls may be parallel).

    The reasoning tokens are counted exactly when each delta says how many generated tokens
    its text came from (the engine and the serial path know: TokenText.generated), counting
    a token whose text is held back with the delta that finally carries it."""

    def __init__(self, reader: ReplyReader) -> None:
        self.reader = reader

    def read(self, delta: TextDelta, tokens: int = 0) -> TextDelta | None:
        """The delta split (its text the text of `tokens` generated tokens, for counting the
        reasoning's); None when nothing of it can be handed out yet."""
        got = self.reader.feed(delta.text, tokens)
        if delta.finish_reason is None:
            if got.content or got.reasoning or got.pieces or delta.logprobs:
                return replace(
                    delta, text=got.content, reasoning=got.reasoning, call_pieces=got.pieces
                )
            return None
        last, calls = self.reader.end()
        rest = last.content
        if delta.finish_reason == "length" and calls and self._cut_call(rest):
            rest = ""  # the start of another call, cut by the token limit: not an answer
        finish = delta.finish_reason
        if calls and finish == "stop":
            finish = "tool_calls"
        return replace(
            delta,
            text=got.content + rest,
            reasoning=got.reasoning + last.reasoning,
            finish_reason=finish,
            tool_calls=calls,
            call_pieces=(*got.pieces, *last.pieces),
            reasoning_tokens=self.reader.reasoning_tokens,
        )

    def _cut_call(self, text: str) -> bool:
        """Whether held text is a call marker cut short."""
        syntax = self.reader.format.calls
        head = text.strip()
        return bool(head) and any(
            m.startswith(head) and m != head for m in (*syntax.openers, *syntax.at_start)
        )
