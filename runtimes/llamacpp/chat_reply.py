"""A chat reply read while it is generated, in its model family's format (formats/): each
delta split into reasoning, answer and call pieces with the generated tokens behind it
counted; whether generation may stop (a reply that may make one call has made it); and the
reasoning budget, whose spending forces the format's close marker into the generation.

Both generation paths (serial.py, batch.py) hand a chat's deltas to its ChatReply, with how
many tokens they have generated so far, and ask it after each token what to force."""

from __future__ import annotations

from dataclasses import replace

from llama_cpp import LlamaGrammar
from localoip.runtimes.capabilities import TextDelta
from localoip.runtimes.llamacpp.formats.deltas import ReplyDeltas
from localoip.runtimes.llamacpp.formats.reader import ReplyReader


class ChatReply:
    """Reads one generation's deltas with `reader`. `budget`: the reasoning tokens allowed
    (None: no limit), after which `close` (the close marker's tokens) is forced, once.
    Without `answers` (a forced call, whose grammar admits only reasoning and calls) no text
    is an answer: what is left over is the start of a call that the token limit cut.
    `after` is the grammar of the rest of the reply once the close marker is forced (None:
    the reply has no grammar)."""

    def __init__(
        self,
        reader: ReplyReader,
        budget: int | None = None,
        close: tuple[int, ...] = (),
        answers: bool = True,
        after: LlamaGrammar | None = None,
    ) -> None:
        self.reader = reader
        self._answers = answers
        self.after = after
        self._deltas = ReplyDeltas(reader)
        self._budget = budget if close else None
        self._close = close
        self._read = 0  # generated tokens whose text was read
        self._spent = 0  # of those, the ones read inside the reasoning

    def read(self, delta: TextDelta, generated: int) -> TextDelta | None:
        """`delta` split, `generated` being the tokens generated up to it (a token whose text
        was held counts with the delta that carries it); None when nothing is certain yet."""
        tokens, self._read = generated - self._read, generated
        inside = self.reader.in_reasoning
        out = self._deltas.read(delta, tokens)
        if inside or self.reader.in_reasoning:
            self._spent += tokens
        if out is None or self._answers or not out.text:
            return out
        out = replace(out, text="")
        kept = out.reasoning or out.call_pieces or out.logprobs or out.finish_reason
        return out if kept else None

    @property
    def finished(self) -> bool:
        """Whether generation can stop: calls are not parallel and the first has ended."""
        return self.reader.finished

    def force(self) -> tuple[int, ...]:
        """Tokens to put into the generation now, as if sampled: the reasoning's close marker
        once the budget is spent while the reasoning is still open (once); else none."""
        budget = self._budget
        if budget is None or self._spent < budget or not self.reader.in_reasoning:
            return ()
        self._budget = None
        return self._close
