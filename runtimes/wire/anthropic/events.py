"""A streamed message as Anthropic's events, made from a generation's deltas.

The sequence (docs.claude.com/en/docs/build-with-claude/streaming): `message_start` (the
message with no content yet), `ping`, then for each block `content_block_start`, its deltas
(`thinking_delta`, `text_delta` or `input_json_delta`) and `content_block_stop`; then
`message_delta` (stop_reason, stop_sequence and the usage) and `message_stop`. Each event is
sent as an SSE event named by its `type`.
"""

from __future__ import annotations

import msgspec
from localoip.runtimes import capabilities as base
from localoip.runtimes.wire.anthropic.blocks import ReplyBlock, Text, Thinking, ToolUse
from localoip.runtimes.wire.anthropic.messages import (
    Message,
    Usage,
    stop_reason,
    usage,
)


class Event(msgspec.Struct, tag_field="type", kw_only=True):
    """A stream event; `type` is its tag and its SSE event name."""


class MessageStart(Event, tag="message_start"):
    message: Message


class Ping(Event, tag="ping"):
    pass


class BlockStart(Event, tag="content_block_start"):
    index: int
    content_block: ReplyBlock


class Delta(msgspec.Struct, tag_field="type", kw_only=True):
    """A piece of the open block."""


class TextDelta(Delta, tag="text_delta"):
    text: str


class ThinkingDelta(Delta, tag="thinking_delta"):
    thinking: str


class InputJsonDelta(Delta, tag="input_json_delta"):
    partial_json: str  # a piece of the call's `input`, as JSON text


class BlockDelta(Event, tag="content_block_delta"):
    index: int
    delta: TextDelta | ThinkingDelta | InputJsonDelta


class BlockStop(Event, tag="content_block_stop"):
    index: int


class Stop(msgspec.Struct, kw_only=True):
    stop_reason: str | None
    stop_sequence: str | None = None


class MessageDelta(Event, tag="message_delta"):
    """The end of the message: why it stopped and the usage, whose counts are totals (the
    prompt's too: they are known only once the reply has ended)."""

    delta: Stop
    usage: Usage


class MessageStop(Event, tag="message_stop"):
    pass


def event_name(event: Event) -> str:
    """An event's `type`, which is also its SSE event name."""
    return str(type(event).__struct_config__.tag)


StreamEvent = MessageStart | Ping | BlockStart | BlockDelta | BlockStop | MessageDelta | MessageStop
"""Any event of a message's stream, read by its `type`."""


class MessageEvents:
    """A message's events as its deltas arrive: `start()`, `add(delta)` for each, then
    `end(result)` with the whole result (runtimes.capabilities.Fold's). `show_thinking`
    False sends thinking blocks without their text (`display: "omitted"`)."""

    def __init__(self, mid: str, model: str, show_thinking: bool = True) -> None:
        self.mid = mid
        self.model = model
        self.show_thinking = show_thinking
        self.index = -1  # of the last block started
        self.open: tuple[str, int] | None = None  # the open block: its kind and call index
        self.streamed_calls = False  # calls came as pieces, not only whole at the end

    def start(self) -> list[Event]:
        """message_start, with no content or stop_reason yet, and a ping."""
        empty = Message(
            id=self.mid, content=[], model=self.model, usage=Usage(input_tokens=0, output_tokens=0)
        )
        return [MessageStart(message=empty), Ping()]

    def add(self, delta: base.TextDelta) -> list[Event]:
        """The events of one delta: its reasoning, its text, then its call pieces."""
        events: list[Event] = []
        if delta.reasoning:
            events += self._into(("thinking", 0), Thinking(thinking=""))
            if self.show_thinking:
                events.append(self._delta(ThinkingDelta(thinking=delta.reasoning)))
        if delta.text:
            events += self._into(("text", 0), Text(text=""))
            events.append(self._delta(TextDelta(text=delta.text)))
        for piece in delta.call_pieces:
            self.streamed_calls = True
            if piece.id or self.open != ("call", piece.index):
                call = ToolUse(id=piece.id, name=piece.name, input={})
                events += self._into(("call", piece.index), call, new=bool(piece.id))
            if piece.arguments:
                events.append(self._delta(InputJsonDelta(partial_json=piece.arguments)))
        if delta.tool_calls and not self.streamed_calls:
            for i, c in enumerate(delta.tool_calls):
                events += self._into(("call", i), ToolUse(id=c.id, name=c.name, input={}))
                events.append(self._delta(InputJsonDelta(partial_json=c.arguments)))
        return events

    def end(self, result: base.TextResult) -> list[Event]:
        """The open block's stop, message_delta and message_stop."""
        stop = Stop(stop_reason=stop_reason(result), stop_sequence=result.stop_sequence)
        return [*self._close(), MessageDelta(delta=stop, usage=usage(result)), MessageStop()]

    def _into(self, kind: tuple[str, int], block: ReplyBlock, new: bool = False) -> list[Event]:
        """Events that make `kind` the open block: the open one's stop and its start; none
        when it is open already (unless `new`: a call with its own id starts a block)."""
        if self.open == kind and not new:
            return []
        events = self._close()
        self.index += 1
        self.open = kind
        return [*events, BlockStart(index=self.index, content_block=block)]

    def _close(self) -> list[Event]:
        if self.open is None:
            return []
        self.open = None
        return [BlockStop(index=self.index)]

    def _delta(self, delta: TextDelta | ThinkingDelta | InputJsonDelta) -> BlockDelta:
        return BlockDelta(index=self.index, delta=delta)
