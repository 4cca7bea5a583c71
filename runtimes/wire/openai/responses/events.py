"""Responses API stream events, and the events that build each kind of output item.

A run numbers each event (`sequence_number`) as it sends it.
"""

from __future__ import annotations

import msgspec
from localoip.runtimes.wire.openai.responses.items import (
    CompactionItem,
    FunctionCallItem,
    Item,
    MessageItem,
    OutputText,
    ReasoningItem,
    ReasoningText,
    message_item,
)
from localoip.runtimes.wire.openai.responses.objects import Response
from msgspec import UNSET
from msgspec.structs import replace


class Event(msgspec.Struct, kw_only=True):
    type: str
    sequence_number: int = 0


class Lifecycle(Event, kw_only=True):
    """response.created, queued, in_progress, completed, incomplete or failed."""

    response: Response


class OutputItemEvent(Event, kw_only=True):
    """response.output_item.added or .done."""

    output_index: int
    item: Item


class ContentPartEvent(Event, kw_only=True):
    """response.content_part.added or .done: a message's text, or a reasoning item's."""

    item_id: str
    output_index: int
    content_index: int = 0
    part: OutputText | ReasoningText


class TextDeltaEvent(Event, kw_only=True):
    item_id: str
    output_index: int
    content_index: int = 0
    delta: str
    logprobs: list[object] = []


class TextDoneEvent(Event, kw_only=True):
    item_id: str
    output_index: int
    content_index: int = 0
    text: str
    logprobs: list[object] = []


class ReasoningDeltaEvent(Event, kw_only=True):
    """response.reasoning_text.delta"""

    item_id: str
    output_index: int
    content_index: int = 0
    delta: str


class ReasoningDoneEvent(Event, kw_only=True):
    """response.reasoning_text.done"""

    item_id: str
    output_index: int
    content_index: int = 0
    text: str


class ArgumentsDeltaEvent(Event, kw_only=True):
    item_id: str
    output_index: int
    delta: str


class ArgumentsDoneEvent(Event, kw_only=True):
    item_id: str
    output_index: int
    name: str
    arguments: str


class CompactingEvent(Event, kw_only=True):
    """The summary grows; as in OpenAI, the event carries none of it."""

    item_id: str
    output_index: int


def lifecycle(kind: str, response: Response) -> Lifecycle:
    return Lifecycle(type=f"response.{kind}", response=response)


def item_added(item: Item, index: int) -> OutputItemEvent:
    return OutputItemEvent(type="response.output_item.added", output_index=index, item=item)


def item_done(item: Item, index: int) -> OutputItemEvent:
    return OutputItemEvent(type="response.output_item.done", output_index=index, item=item)


def message_opened(iid: str, index: int) -> list[Event]:
    item = message_item(iid, "assistant", [], "in_progress")
    part = OutputText(text="")
    return [
        item_added(item, index),
        ContentPartEvent(
            type="response.content_part.added", item_id=iid, output_index=index, part=part
        ),
    ]


def text_delta(iid: str, index: int, text: str) -> TextDeltaEvent:
    return TextDeltaEvent(
        type="response.output_text.delta", item_id=iid, output_index=index, delta=text
    )


def message_closed(item: MessageItem, index: int) -> list[Event]:
    text = item.text
    return [
        TextDoneEvent(
            type="response.output_text.done", item_id=item.id, output_index=index, text=text
        ),
        ContentPartEvent(
            type="response.content_part.done",
            item_id=item.id,
            output_index=index,
            part=OutputText(text=text),
        ),
        item_done(item, index),
    ]


def reasoning_opened(iid: str, index: int) -> list[Event]:
    """A reasoning item as it starts, and its one reasoning_text part, empty."""
    item = ReasoningItem(id=iid, status="in_progress")
    return [
        item_added(item, index),
        ContentPartEvent(
            type="response.content_part.added",
            item_id=iid,
            output_index=index,
            part=ReasoningText(text=""),
        ),
    ]


def reasoning_delta(iid: str, index: int, text: str) -> ReasoningDeltaEvent:
    return ReasoningDeltaEvent(
        type="response.reasoning_text.delta", item_id=iid, output_index=index, delta=text
    )


def reasoning_closed(item: ReasoningItem, index: int) -> list[Event]:
    text = item.text
    return [
        ReasoningDoneEvent(
            type="response.reasoning_text.done", item_id=item.id, output_index=index, text=text
        ),
        ContentPartEvent(
            type="response.content_part.done",
            item_id=item.id,
            output_index=index,
            part=ReasoningText(text=text),
        ),
        item_done(item, index),
    ]


def call_opened(item: FunctionCallItem, index: int) -> OutputItemEvent:
    """A function_call item as it starts: no arguments yet."""
    return item_added(replace(item, arguments="", status="in_progress"), index)


def arguments_delta(iid: str, index: int, text: str) -> ArgumentsDeltaEvent:
    return ArgumentsDeltaEvent(
        type="response.function_call_arguments.delta", item_id=iid, output_index=index, delta=text
    )


def call_closed(item: FunctionCallItem, index: int) -> list[Event]:
    done = ArgumentsDoneEvent(
        type="response.function_call_arguments.done",
        item_id=item.id,
        output_index=index,
        name=item.name,
        arguments=item.arguments,
    )
    return [done, item_done(item, index)]


def call_events(item: FunctionCallItem, index: int) -> list[Event]:
    """A whole function call's events, its arguments in one delta."""
    return [
        call_opened(item, index),
        arguments_delta(item.id, index, item.arguments),
        *call_closed(item, index),
    ]


def compaction_opened(iid: str, index: int) -> OutputItemEvent:
    return item_added(CompactionItem(id=iid, encrypted_content=""), index)


def compacting(iid: str, index: int) -> CompactingEvent:
    return CompactingEvent(type="response.compaction.compacting", item_id=iid, output_index=index)


def compaction_events(item: CompactionItem, index: int) -> list[Event]:
    """A whole compaction item's events."""
    return [compaction_opened(item.id, index), compacting(item.id, index), item_done(item, index)]


def replay(response: Response) -> list[Event]:
    """The events of a response that has finished, numbered, for a stream asked for later."""
    start = replace(response, status="in_progress", output=[], usage=UNSET)
    events: list[Event] = [lifecycle("created", start), lifecycle("in_progress", start)]
    for index, item in enumerate(response.output):
        if isinstance(item, MessageItem):
            events += message_opened(item.id, index)
            events += [text_delta(item.id, index, item.text)] if item.text else []
            events += message_closed(item, index)
        elif isinstance(item, ReasoningItem):
            events += reasoning_opened(item.id, index)
            events += [reasoning_delta(item.id, index, item.text)] if item.text else []
            events += reasoning_closed(item, index)
        elif isinstance(item, CompactionItem):
            events += compaction_events(item, index)
        elif isinstance(item, FunctionCallItem):
            events += call_events(item, index)
    last = response.status if response.status in ("completed", "failed") else "incomplete"
    events.append(lifecycle(last, response))
    for number, event in enumerate(events):
        event.sequence_number = number
    return events
