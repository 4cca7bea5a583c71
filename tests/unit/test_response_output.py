"""How a generation's deltas become Responses output items and stream events (OutputBuilder)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec
from localoip.app.api.openai.responses.output import OutputBuilder
from localoip.runtimes.capabilities import TextDelta, ToolCall, ToolCallPiece

WEATHER = ToolCall("call_a", "get_weather", '{"city": "Oslo"}')
TIME = ToolCall("call_b", "get_time", "{}")


@dataclass
class Built:
    """What an OutputBuilder made: its items as JSON, its status and usage."""

    output: list[dict[str, Any]]
    status: str
    usage: tuple[int, int, int, int]


def build(deltas: list[TextDelta], cancelled: bool = False) -> tuple[Built, list[dict[str, Any]]]:
    """The builder's output and events, as JSON, for the deltas."""
    out = OutputBuilder()
    events = [e for d in deltas for e in out.add(d)] + out.finish(cancelled)
    built = Built(msgspec.to_builtins(out.output), out.status, out.usage)
    return built, msgspec.to_builtins(events)


def streamed_calls() -> list[TextDelta]:
    """Text, then two calls as the runtime streams them, then the end with the whole calls."""
    return [
        TextDelta("Let me check."),
        TextDelta("", call_pieces=(ToolCallPiece(0, "call_a", "get_weather"),)),
        TextDelta("", call_pieces=(ToolCallPiece(0, arguments='{"city": '),)),
        TextDelta("", call_pieces=(ToolCallPiece(0, arguments='"Oslo"}'),)),
        TextDelta("", call_pieces=(ToolCallPiece(1, "call_b", "get_time"),)),
        TextDelta("", call_pieces=(ToolCallPiece(1, arguments="{}"),)),
        TextDelta("", "tool_calls", (WEATHER, TIME), usage=(10, 20)),
    ]


def test_streamed_calls_open_at_their_first_piece_and_close_when_the_next_one_starts():
    out, events = build(streamed_calls())
    assert [(e["type"].removeprefix("response."), e["output_index"]) for e in events] == [
        ("output_item.added", 0),
        ("content_part.added", 0),
        ("output_text.delta", 0),
        ("output_text.done", 0),
        ("content_part.done", 0),
        ("output_item.done", 0),
        ("output_item.added", 1),
        ("function_call_arguments.delta", 1),
        ("function_call_arguments.delta", 1),
        ("function_call_arguments.done", 1),
        ("output_item.done", 1),
        ("output_item.added", 2),
        ("function_call_arguments.delta", 2),
        ("function_call_arguments.done", 2),
        ("output_item.done", 2),
    ]
    assert [i["type"] for i in out.output] == ["message", "function_call", "function_call"]
    calls = out.output[1:]
    assert [(c["call_id"], c["name"], c["arguments"]) for c in calls] == [
        ("call_a", "get_weather", '{"city": "Oslo"}'),
        ("call_b", "get_time", "{}"),
    ]
    for index, call in enumerate(calls, start=1):
        mine = [e for e in events if e.get("item_id") == call["id"]]
        assert {e["output_index"] for e in mine} == {index}
    assert out.status == "completed" and out.usage == (
        10,
        20,
        0,
        0,
    )  # input, output, cached, reasoning


def test_calls_that_come_only_whole_are_sent_whole():
    out, events = build([TextDelta("", "tool_calls", (WEATHER,), usage=(1, 2))])
    kinds = [e["type"].removeprefix("response.") for e in events]
    assert kinds == [
        "output_item.added",
        "function_call_arguments.delta",
        "function_call_arguments.done",
        "output_item.done",
    ]
    assert events[1]["delta"] == WEATHER.arguments == out.output[0]["arguments"]


def test_a_streamed_call_the_reply_never_finished_closes_incomplete():
    deltas = [
        TextDelta("", call_pieces=(ToolCallPiece(0, "call_a", "get_weather"),)),
        TextDelta("", call_pieces=(ToolCallPiece(0, arguments='{"ci'),)),
    ]
    out, events = build(deltas, cancelled=True)
    assert out.output[0]["status"] == "incomplete" and out.output[0]["arguments"] == '{"ci'
    assert events[-1]["type"] == "response.output_item.done"


def test_a_streamed_call_cut_by_the_token_limit_keeps_its_partial_arguments():
    cut = ToolCall("call_a", "get_weather", '{"ci')
    deltas = [
        TextDelta("", call_pieces=(ToolCallPiece(0, "call_a", "get_weather"),)),
        TextDelta(
            "", "length", (cut,), usage=(1, 5), call_pieces=(ToolCallPiece(0, "", "", '{"ci'),)
        ),
    ]
    out, _ = build(deltas)
    assert out.status == "incomplete"
    assert [(i["type"], i["arguments"]) for i in out.output] == [("function_call", '{"ci')]
