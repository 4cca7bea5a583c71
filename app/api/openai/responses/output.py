"""A response's output, built from a generation's deltas with the events that build it, and the
response once the generation has ended or failed."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Protocol

from localoip.app.core.errors import Problem
from localoip.runtimes import capabilities as base
from localoip.runtimes.folding import Fold
from localoip.runtimes.wire.openai.responses import events as ev
from localoip.runtimes.wire.openai.responses.items import (
    FunctionCallItem,
    Item,
    MessageItem,
    ReasoningItem,
    ReasoningText,
    message_item,
    new_id,
)
from localoip.runtimes.wire.openai.responses.objects import (
    IncompleteDetails,
    Response,
    ResponseError,
    usage,
)
from msgspec.structs import replace


class ItemBuilder(Protocol):
    """Builds a response's output items from a generation's deltas, with their events:
    OutputBuilder for messages and calls, compaction.SummaryBuilder for a compaction."""

    output: list[Item]

    @property
    def status(self) -> str: ...

    @property
    def usage(self) -> tuple[int, int, int, int]: ...

    def add(self, delta: base.TextDelta) -> list[ev.Event]: ...

    def finish(self, cancelled: bool = False) -> list[ev.Event]: ...


def tokens(fold: Fold) -> tuple[int, int, int, int]:
    """A generation's usage so far: input, output, cached input and reasoning tokens."""
    return (*(fold.usage or (0, 0)), fold.cached_tokens, fold.reasoning_tokens)


def finished(response: Response, out: ItemBuilder, cancelled: bool = False) -> Response:
    """The response once its generation has ended, or was cancelled."""
    status = "cancelled" if cancelled else out.status
    return replace(
        response,
        status=status,
        completed_at=int(time.time()) if status == "completed" else None,
        incomplete_details=IncompleteDetails(reason="max_output_tokens")
        if status == "incomplete"
        else None,
        output=list(out.output),
        usage=usage(*out.usage),
    )


def failed(response: Response, problem: Problem, out: ItemBuilder) -> Response:
    """The response when its generation raised: the error, and whatever output came first."""
    code = {429: "rate_limit_exceeded"}.get(problem.status) or (
        "server_error" if problem.status >= 500 else "invalid_prompt"
    )
    error = ResponseError(
        code=code, message=problem.message, param=problem.param, type=problem.type
    )
    return replace(response, status="failed", error=error, output=list(out.output))


@dataclass
class _OpenMessage:
    id: str
    index: int
    text: list[str] = field(default_factory=list)


@dataclass
class _OpenCall:
    item: FunctionCallItem  # arguments empty
    index: int
    arguments: list[str] = field(default_factory=list)


class OutputBuilder:
    """Turns a generation's deltas into output items, and the events that build them.

    Reasoning goes into a reasoning item, opened at its first piece and closed when the
    answer or a call begins; text goes into one assistant message, opened at the first text;
    each tool call becomes a function_call item after it. A call the runtime streams
    (`call_pieces`) opens at its first piece and gets its arguments as they come, as OpenAI
    streams them; one that comes only whole, on the last delta, is sent whole. A generation
    with neither text nor calls still gives an empty message.
    """

    def __init__(self) -> None:
        self.output: list[Item] = []
        self.fold = Fold()
        self._reasoning: _OpenMessage | None = None
        self._message: _OpenMessage | None = None
        self._call: _OpenCall | None = None
        self._streamed = 0  # calls opened from pieces so far

    @property
    def status(self) -> str:
        return "incomplete" if self.fold.finish_reason == "length" else "completed"

    @property
    def usage(self) -> tuple[int, int, int, int]:
        return tokens(self.fold)

    def add(self, delta: base.TextDelta) -> list[ev.Event]:
        events: list[ev.Event] = []
        if delta.reasoning:
            events += self._close("completed") + self._close_call("incomplete")
            if self._reasoning is None:
                self._reasoning = _OpenMessage(new_id("rs"), len(self.output))
                events += ev.reasoning_opened(self._reasoning.id, self._reasoning.index)
            thought = self._reasoning
            thought.text.append(delta.reasoning)
            events.append(ev.reasoning_delta(thought.id, thought.index, delta.reasoning))
        if delta.text:
            # Text after a streamed call means the call never completed: the reply was text.
            events += self._close_call("incomplete")
            if self._message is None:
                events += self._open()
            message = self._message
            assert message is not None
            message.text.append(delta.text)
            events.append(ev.text_delta(message.id, message.index, delta.text))
        for piece in delta.call_pieces:
            events += self._piece(piece)
        if delta.finish_reason:
            events += self._calls(delta.tool_calls)
        self.fold.add(delta)
        return events

    def finish(self, cancelled: bool = False) -> list[ev.Event]:
        """Close what is open; a generation that gave nothing gets its empty message."""
        events = self._close_call("incomplete") if cancelled else []
        events += self._close_reasoning("incomplete" if cancelled else self.status)
        answered = any(isinstance(i, MessageItem | FunctionCallItem) for i in self.output)
        if self._message is None and not answered and not cancelled:
            events += self._open()
        return events + self._close("incomplete" if cancelled else self.status)

    def _open(self) -> list[ev.Event]:
        events = self._close_reasoning("completed")
        self._message = _OpenMessage(new_id("msg"), len(self.output))
        return events + ev.message_opened(self._message.id, self._message.index)

    def _close_reasoning(self, status: str) -> list[ev.Event]:
        thought = self._reasoning
        if thought is None:
            return []
        self._reasoning = None
        content = [ReasoningText(text="".join(thought.text))]
        item = ReasoningItem(id=thought.id, content=content, status=status)
        self.output.append(item)
        return ev.reasoning_closed(item, thought.index)

    def _close(self, status: str) -> list[ev.Event]:
        message = self._message
        if message is None:
            return []
        item = message_item(message.id, "assistant", ["".join(message.text)], status)
        self.output.append(item)
        self._message = None
        return ev.message_closed(item, message.index)

    def _piece(self, piece: base.ToolCallPiece) -> list[ev.Event]:
        """A streamed piece: a new call's id and name (the call before it has ended), or more
        of the open call's arguments."""
        events: list[ev.Event] = []
        if piece.id:
            events += self._close_reasoning("completed")
            events += self._close("completed") + self._close_call("completed")
            item = _call_item(base.ToolCall(piece.id, piece.name, ""))
            self._call = _OpenCall(item, len(self.output))
            self._streamed += 1
            events.append(ev.call_opened(item, self._call.index))
        call = self._call
        if piece.arguments and call is not None:
            call.arguments.append(piece.arguments)
            events.append(ev.arguments_delta(call.item.id, call.index, piece.arguments))
        return events

    def _close_call(self, status: str) -> list[ev.Event]:
        call = self._call
        if call is None:
            return []
        self._call = None
        item = replace(call.item, arguments="".join(call.arguments), status=status)
        self.output.append(item)
        return ev.call_closed(item, call.index)

    def _calls(self, calls: tuple[base.ToolCall, ...]) -> list[ev.Event]:
        """The generation has ended with `calls`: the streamed ones close, the rest come whole.
        A streamed call that is not among them was cut off before it could be read."""
        events: list[ev.Event] = self._close_reasoning("completed") if calls else []
        if self._call is not None:
            ended = self._streamed <= len(calls)
            events += self._close_call("completed" if ended else "incomplete")
        for call in calls[self._streamed :]:
            events += self._close("completed")
            item = _call_item(call)
            self.output.append(item)
            events += ev.call_events(item, len(self.output) - 1)
        return events


def _call_item(call: base.ToolCall) -> FunctionCallItem:
    return FunctionCallItem(
        id=new_id("fc"), call_id=call.id, name=call.name, arguments=call.arguments
    )
