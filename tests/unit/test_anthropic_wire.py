"""Anthropic's Messages API Structs: requests read into neutral chats, results written as
messages, and deltas written as the exact event sequence (runtimes/wire/anthropic)."""

from __future__ import annotations

import base64
import json

import msgspec
import pytest
from localoip.runtimes.capabilities import (
    IMAGE_MARKER,
    ChatImage,
    ChatMessage,
    InputError,
    TextDelta,
    TextResult,
    ToolCall,
    ToolCallPiece,
)
from localoip.runtimes.folding import gather
from localoip.runtimes.wire.anthropic.events import MessageEvents, StreamEvent
from localoip.runtimes.wire.anthropic.messages import Message, message, stop_reason
from localoip.runtimes.wire.anthropic.requests import (
    CountTokensRequest,
    MessagesRequest,
    chat_request,
    effort_for,
)

WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def read(**body: object) -> MessagesRequest:
    return msgspec.json.decode(
        json.dumps({"model": "m", "max_tokens": 16, **body}), type=MessagesRequest
    )


def test_system_blocks_text_and_sampling_become_the_neutral_chat():
    chat = chat_request(
        read(
            system=[{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Be kind."}],
            messages=[{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
            stop_sequences=["\n\n"],
            temperature=0.5,
            top_p=0.9,
            top_k=40,
            metadata={"user_id": "u1"},
        )
    )
    assert chat.messages == [
        ChatMessage("system", "Be brief.\nBe kind."),
        ChatMessage("user", "Hi"),
    ]
    s = chat.sampling
    assert (s.max_tokens, s.temperature, s.top_p, s.top_k, s.stop) == (16, 0.5, 0.9, 40, ("\n\n",))


def test_a_tool_round_trip_becomes_a_call_and_a_tool_message():
    chat = chat_request(
        read(
            tools=[WEATHER],
            tool_choice={"type": "any", "disable_parallel_tool_use": True},
            messages=[
                {"role": "user", "content": "Weather in Paris?"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "Look it up.", "signature": "s"},
                        {
                            "type": "tool_use",
                            "id": "t1",
                            "name": "get_weather",
                            "input": {"city": "Paris"},
                        },
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "t1", "content": "sunny"},
                        {"type": "text", "text": "And now?"},
                    ],
                },
            ],
        )
    )
    assert chat.messages[1:] == [
        ChatMessage(
            "assistant",
            None,
            tool_calls=(ToolCall("t1", "get_weather", '{"city": "Paris"}'),),
            reasoning="Look it up.",
        ),
        ChatMessage("tool", "sunny", tool_call_id="t1"),
        ChatMessage("user", "And now?"),
    ]
    assert (chat.tool_choice, chat.parallel_tool_calls) == ("required", False)
    assert chat.tools[0].parameters == WEATHER["input_schema"]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, "auto"),
        ({"type": "none"}, "none"),
        ({"type": "tool", "name": "get_weather"}, "get_weather"),
    ],
)
def test_each_tool_choice_has_its_neutral_form(choice, expected):
    chat = chat_request(
        read(tools=[WEATHER], tool_choice=choice, messages=[{"role": "user", "content": "x"}])
    )
    assert (chat.tool_choice, chat.parallel_tool_calls) == (expected, None)


def test_a_system_message_among_the_turns_stays_where_it_is():
    chat = chat_request(
        read(
            messages=[
                {"role": "user", "content": "Hi"},
                {"role": "system", "content": [{"type": "text", "text": "Today is Monday."}]},
                {"role": "user", "content": "Which day is it?"},
            ]
        )
    )
    assert [(m.role, m.content) for m in chat.messages] == [
        ("user", "Hi"),
        ("system", "Today is Monday."),
        ("user", "Which day is it?"),
    ]


def test_an_error_result_reaches_the_model_marked_as_one():
    chat = chat_request(
        read(
            messages=[
                {"role": "user", "content": "x"},
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}],
                },
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "tool_result",
                            "tool_use_id": "t",
                            "is_error": True,
                            "content": [{"type": "text", "text": "no such city"}],
                        }
                    ],
                },
            ]
        )
    )
    assert chat.messages[-1] == ChatMessage("tool", "Error: no such city", tool_call_id="t")


@pytest.mark.parametrize(
    ("thinking", "effort", "budget"),
    [
        ({"type": "enabled", "budget_tokens": 4000}, "low", 4000),
        ({"type": "enabled", "budget_tokens": 10000}, "medium", 10000),
        ({"type": "enabled", "budget_tokens": 31999}, "high", 31999),
        ({"type": "disabled"}, "none", None),
        ({"type": "adaptive"}, None, None),
    ],
)
def test_thinking_sets_the_reasoning_effort_and_budget(thinking, effort, budget):
    chat = chat_request(read(thinking=thinking, messages=[{"role": "user", "content": "x"}]))
    assert (chat.reasoning_effort, chat.max_reasoning_tokens) == (effort, budget)
    assert effort_for(budget or 1) in ("low", "medium", "high")


def test_a_last_assistant_message_is_a_prefill_to_continue():
    chat = chat_request(
        read(
            messages=[
                {"role": "user", "content": "Count"},
                {"role": "assistant", "content": "1, 2,"},
            ]
        )
    )
    assert chat.continue_final and chat.messages[-1] == ChatMessage("assistant", "1, 2,")


def test_count_tokens_needs_no_max_tokens_and_samples_nothing():
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    chat = chat_request(msgspec.json.decode(json.dumps(body), type=CountTokensRequest))
    assert chat.sampling.max_tokens is None


@pytest.mark.parametrize(
    ("messages", "param", "needle"),
    [
        (
            [
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": "t9", "content": "x"}],
                }
            ],
            "messages[0].content[0].tool_use_id",
            "'t9'",
        ),
        (
            [
                {
                    "role": "user",
                    "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}],
                }
            ],
            "messages[0].content[0].source.type",
            "Files API",
        ),
        (
            [
                {
                    "role": "user",
                    "content": [{"type": "document", "source": {"type": "text", "data": "x"}}],
                }
            ],
            "messages[0].content[0].type",
            "document block",
        ),
        (
            [
                {
                    "role": "user",
                    "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}],
                }
            ],
            "messages[0].content[0].type",
            "tool_use block",
        ),
        ([{"role": "assistant", "content": "hi"}], "messages[0]", "follow another message"),
    ],
)
def test_messages_that_cannot_be_served_name_their_field(messages, param, needle):
    with pytest.raises(InputError) as error:
        chat_request(read(messages=messages))
    assert error.value.param == param and needle in str(error.value)


def test_an_unknown_block_type_is_a_validation_error_that_names_it():
    with pytest.raises(
        msgspec.ValidationError, match=r"'video'.*messages\[0\]\.content\[0\]\.type"
    ):
        read(messages=[{"role": "user", "content": [{"type": "video", "url": "x"}]}])


def test_server_tools_and_tools_without_a_schema_are_refused():
    for tool, param in (
        ({"type": "web_search_20250305", "name": "web_search"}, "tools[0].type"),
        ({"name": "f"}, "tools[0].input_schema"),
    ):
        with pytest.raises(InputError) as error:
            chat_request(read(tools=[tool], messages=[{"role": "user", "content": "x"}]))
        assert error.value.param == param


# -- replies -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("finish", "stop", "reason"),
    [
        ("stop", None, "end_turn"),
        ("stop", "\n\n", "stop_sequence"),
        ("length", None, "max_tokens"),
        ("tool_calls", None, "tool_use"),
    ],
)
def test_each_finish_has_its_stop_reason(finish, stop, reason):
    assert stop_reason(TextResult("x", finish, 1, 1, stop_sequence=stop)) == reason


def test_a_message_holds_thinking_text_and_calls_in_order_with_the_cache_apart():
    result = TextResult(
        "Checking.",
        "tool_calls",
        prompt_tokens=30,
        completion_tokens=12,
        tool_calls=(ToolCall("toolu_1", "get_weather", '{"city": "Paris"}'),),
        cached_tokens=20,
        reasoning="Look it up.",
    )
    body = msgspec.to_builtins(message("m", result))
    assert body["content"] == [
        {"type": "thinking", "thinking": "Look it up.", "signature": ""},
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
    ]
    assert (body["stop_reason"], body["stop_sequence"]) == ("tool_use", None)
    assert body["usage"] == {
        "input_tokens": 10,
        "output_tokens": 12,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 20,
    }


# -- streams -------------------------------------------------------------------------------

DELTAS = [
    TextDelta("", reasoning="Look "),
    TextDelta("", reasoning="it up."),
    TextDelta("Checking"),
    TextDelta(".", call_pieces=(ToolCallPiece(0, "toolu_1", "get_weather", '{"city"'),)),
    TextDelta("", call_pieces=(ToolCallPiece(0, arguments=': "Paris"}'),)),
    TextDelta(
        "",
        "tool_calls",
        tool_calls=(ToolCall("toolu_1", "get_weather", '{"city": "Paris"}'),),
        usage=(30, 12),
    ),
]


def events_of(deltas: list[TextDelta], show_thinking: bool = True) -> list[dict]:
    writer = MessageEvents("msg_1", "m", show_thinking)
    events = writer.start()
    for delta in deltas:
        events += writer.add(delta)
    events += writer.end(gather(deltas))
    return [msgspec.to_builtins(e) for e in events]


def test_a_stream_is_the_exact_event_sequence():
    events = events_of(DELTAS)
    assert [(e["type"], e.get("index"), e.get("delta", {}).get("type")) for e in events] == [
        ("message_start", None, None),
        ("ping", None, None),
        ("content_block_start", 0, None),
        ("content_block_delta", 0, "thinking_delta"),
        ("content_block_delta", 0, "thinking_delta"),
        ("content_block_stop", 0, None),
        ("content_block_start", 1, None),
        ("content_block_delta", 1, "text_delta"),
        ("content_block_delta", 1, "text_delta"),
        ("content_block_stop", 1, None),
        ("content_block_start", 2, None),
        ("content_block_delta", 2, "input_json_delta"),
        ("content_block_delta", 2, "input_json_delta"),
        ("content_block_stop", 2, None),
        ("message_delta", None, None),
        ("message_stop", None, None),
    ]
    assert events[10]["content_block"] == {
        "type": "tool_use",
        "id": "toolu_1",
        "name": "get_weather",
        "input": {},
    }
    assert events[-2]["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}
    assert events[-2]["usage"]["input_tokens"] == 30


def test_the_events_read_back_into_the_whole_message():
    """The SDK's way: the blocks of the starts, grown by the deltas, equal the whole reply."""
    events = [msgspec.convert(e, StreamEvent) for e in events_of(DELTAS)]
    reply = events[0].message
    for event in events[1:]:
        if event.__class__.__name__ == "BlockStart":
            reply.content.append(event.content_block)
        elif event.__class__.__name__ == "BlockDelta":
            block, piece = reply.content[event.index], event.delta
            if hasattr(piece, "partial_json"):
                block.input = {
                    **block.input,
                    "_json": block.input.get("_json", "") + piece.partial_json,
                }
            elif hasattr(piece, "thinking"):
                block.thinking += piece.thinking
            else:
                block.text += piece.text
    thinking, text, call = reply.content
    assert (thinking.thinking, text.text, json.loads(call.input["_json"])) == (
        "Look it up.",
        "Checking.",
        {"city": "Paris"},
    )
    whole = message("m", gather(DELTAS))
    assert isinstance(whole, Message) and whole.content[2].input == {"city": "Paris"}


def test_calls_given_only_whole_are_sent_as_one_json_delta_each():
    deltas = [
        TextDelta("Hi"),
        TextDelta(
            "",
            "tool_calls",
            tool_calls=(ToolCall("a", "f", "{}"), ToolCall("b", "g", '{"x": 1}')),
            usage=(3, 4),
        ),
    ]
    kinds = [(e["type"], e.get("index")) for e in events_of(deltas)]
    assert kinds.count(("content_block_start", 1)) == kinds.count(("content_block_start", 2)) == 1
    assert ("content_block_stop", 2) in kinds


def test_omitted_thinking_keeps_its_block_without_the_text():
    events = events_of(DELTAS, show_thinking=False)
    assert events[2]["content_block"] == {"type": "thinking", "thinking": "", "signature": ""}
    assert not [e for e in events if e.get("delta", {}).get("type") == "thinking_delta"]


def test_image_blocks_stand_where_they_are_among_the_text_and_in_tool_results():
    png = base64.b64encode(b"\x89PNG\r\n\x1a\nrest").decode()
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png}}
    url = {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}
    call = {"type": "tool_use", "id": "t", "name": "camera", "input": {}}
    result = {
        "type": "tool_result",
        "tool_use_id": "t",
        "content": [url, {"type": "text", "text": "b"}],
    }
    messages = [
        {
            "role": "user",
            "content": [{"type": "text", "text": "a"}, image, {"type": "text", "text": "c"}],
        },
        {"role": "assistant", "content": [call]},
        {"role": "user", "content": [result]},
    ]
    user, _, tool = chat_request(read(messages=messages)).messages
    assert user.content == f"a{IMAGE_MARKER}c"
    assert [(i.param, i.url) for i in user.images] == [("messages[0].content[1]", None)]
    assert tool.role == "tool" and tool.content == f"{IMAGE_MARKER}b"
    assert tool.images == (
        ChatImage(b"", "messages[2].content[0].content[0]", url=url["source"]["url"]),
    )
