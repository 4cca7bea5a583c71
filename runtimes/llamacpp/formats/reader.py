"""Reading a reply as it streams: what is reasoning, what is the answer, which tool calls it
makes, and how many of its tokens were reasoning."""

from __future__ import annotations

import math
from dataclasses import dataclass

from localoip.runtimes.capabilities import Tool, ToolCall, ToolCallPiece
from localoip.runtimes.llamacpp.formats.format import Format
from localoip.runtimes.llamacpp.formats.output import Calls, Output
from localoip.runtimes.llamacpp.formats.scan import Scan


@dataclass(frozen=True, slots=True)
class Parsed:
    """What a stretch of the reply turned out to be, in order within each kind."""

    content: str = ""
    reasoning: str = ""
    pieces: tuple[ToolCallPiece, ...] = ()


class ReplyReader:
    """Splits a reply, fed as it streams (at any boundary), into reasoning, answer and calls.

    Text is handed out at once, except what may still become one of the format's markers
    (and whitespace a segment may still drop). Calls stream as pieces: id and name, then
    arguments text. `tools` are the calls it may make (none: calls are not read, their text
    stays text); `opened`: the prompt opened a reasoning block (Format.opens_reasoning);
    without `parallel` only the first call is kept, and `finished` says when it has ended.
    """

    def __init__(
        self,
        fmt: Format,
        tools: tuple[Tool, ...] = (),
        *,
        opened: bool = False,
        parallel: bool = True,
    ) -> None:
        self.format = fmt
        self._scan = Scan()
        self._out = Output(Calls(tools, fmt.make_id, parallel))
        self._parallel = parallel
        self._fed: list[tuple[int, int]] = []  # (reply offset, tokens) of each feed
        self._steps = fmt.layout(self._scan, self._out, fmt, opened)
        self._running = True
        self._run()

    def feed(self, text: str, tokens: int = 0) -> Parsed:
        """Take more reply text (the text of `tokens` generated tokens); what is now certain."""
        if tokens:
            self._fed.append((len(self._scan.text), tokens))
        self._scan.text += text
        self._run()
        return self._take()

    def end(self) -> tuple[Parsed, tuple[ToolCall, ...]]:
        """The reply has ended: what is left, and the calls it made (a call cut short keeps the
        arguments it has)."""
        self._scan.done = True
        self._run()
        self._out.calls.end()
        return self._take(), self._out.calls.whole()

    @property
    def finished(self) -> bool:
        """Whether generation can stop: calls are not parallel and the first one has ended."""
        return not self._parallel and self._out.calls.first_ended

    @property
    def in_reasoning(self) -> bool:
        """Whether the reply is inside a reasoning block that has not closed (a reasoning
        budget, once spent, closes it by making the model write Format.reasoning's close)."""
        return bool(self._out.spans) and self._out.spans[-1][1] < 0

    @property
    def reasoning_tokens(self) -> int:
        """Of the tokens fed so far, how many were reasoning (a token counts where its text
        starts; reasoning markers count as reasoning). Exact when tokens are fed one by one."""
        spans = [(start, math.inf if end < 0 else end) for start, end in self._out.spans]
        return sum(n for at, n in self._fed if any(s <= at < e for s, e in spans))

    def _run(self) -> None:
        if self._running:
            try:
                next(self._steps)
            except StopIteration:
                self._running = False

    def _take(self) -> Parsed:
        out = self._out
        return Parsed(out.content.take(), out.reasoning.take(), out.calls.take())
