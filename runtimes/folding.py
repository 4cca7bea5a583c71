"""Folding a stream of deltas into its whole result, and a whole result into one delta."""

from __future__ import annotations

from collections.abc import Iterable

from localoip.runtimes.capabilities import (
    Speculation,
    TextDelta,
    TextResult,
    TokenLogprob,
    ToolCall,
    Truncated,
)


class Fold:
    """Deltas added up, as they come, into the whole result: the one place a stream is folded.

    Text, reasoning, logprobs and tool calls add up; the last finish_reason, stop sequence,
    truncation and usage (with its cached and reasoning token counts) count. Whole calls come
    on a stream's last delta; calls a stream gave only as pieces (an OpenAI upstream's) are
    put together by `pieced_calls`."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.reasoning: list[str] = []
        self.reasoning_tokens = 0  # with the last usage
        self.finish_reason: str | None = None  # the last one given; None while none was
        self.stop_sequence: str | None = None
        self.usage: tuple[int, int] | None = None  # (prompt_tokens, completion_tokens)
        self.cached_tokens = 0  # with the last usage
        self.tool_calls: list[ToolCall] = []
        self.logprobs: list[TokenLogprob] | None = None  # None while no delta had any
        self.truncated: Truncated | None = None  # the prompt was cut to fit the context
        self.speculation: Speculation | None = None  # with the last usage, when speculative
        self._pieces: dict[int, list[str]] = {}  # call index -> [id, name, arguments]

    def add(self, delta: TextDelta) -> TextDelta:
        """Add a delta; it is returned as it came."""
        self.parts.append(delta.text)
        self.reasoning.append(delta.reasoning)
        self.finish_reason = delta.finish_reason or self.finish_reason
        self.stop_sequence = delta.stop_sequence or self.stop_sequence
        self.truncated = delta.truncated or self.truncated
        self.speculation = delta.speculation or self.speculation
        if delta.usage is not None:
            self.usage, self.cached_tokens = delta.usage, delta.cached_tokens
            self.reasoning_tokens = delta.reasoning_tokens
        self.tool_calls += delta.tool_calls
        if delta.logprobs is not None:
            self.logprobs = self.logprobs or []
            self.logprobs += delta.logprobs
        for piece in delta.call_pieces:
            call = self._pieces.setdefault(piece.index, ["", "", ""])
            call[0] = piece.id or call[0]
            call[1] += piece.name
            call[2] += piece.arguments
        return delta

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def pieced_calls(self) -> tuple[ToolCall, ...]:
        """The calls the pieces make, by index."""
        return tuple(ToolCall(*self._pieces[i]) for i in sorted(self._pieces))

    def result(self) -> TextResult:
        """The whole result so far: finish_reason "stop" and no usage (0, 0) until given."""
        prompt_tokens, completion_tokens = self.usage or (0, 0)
        return TextResult(
            text=self.text,
            finish_reason=self.finish_reason or "stop",
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            tool_calls=tuple(self.tool_calls),
            logprobs=None if self.logprobs is None else tuple(self.logprobs),
            cached_tokens=self.cached_tokens,
            reasoning="".join(self.reasoning),
            reasoning_tokens=self.reasoning_tokens,
            stop_sequence=self.stop_sequence,
            truncated=self.truncated,
            speculation=self.speculation,
        )


def gather(deltas: Iterable[TextDelta]) -> TextResult:
    """The whole result a stream of deltas adds up to (see Fold)."""
    fold = Fold()
    for delta in deltas:
        fold.add(delta)
    return fold.result()


def as_delta(result: TextResult) -> TextDelta:
    """A whole result as the one delta of a stream, for code that reads streams."""
    return TextDelta(
        result.text,
        result.finish_reason,
        result.tool_calls,
        result.logprobs,
        (result.prompt_tokens, result.completion_tokens),
        cached_tokens=result.cached_tokens,
        reasoning=result.reasoning,
        reasoning_tokens=result.reasoning_tokens,
        stop_sequence=result.stop_sequence,
        truncated=result.truncated,
        speculation=result.speculation,
    )
