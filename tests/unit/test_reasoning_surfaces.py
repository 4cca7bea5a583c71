"""Reasoning on each surface, translated from the runtime's neutral deltas and results: chat
completions (`reasoning_content`, whole and streamed, and read back from an upstream), the
Responses API's reasoning items and events, OIP's `reasoning` tensor, and the request controls
every protocol checks alike (wire/controls.reasoning_fields)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from localoip.app.api.oip import parameters
from localoip.app.api.oip.dataplane import chat_outputs
from localoip.app.api.openai.responses.inputs import chat_messages
from localoip.app.api.openai.responses.output import OutputBuilder
from localoip.runtimes.capabilities import (
    ChatMessage,
    ChatRequest,
    InputError,
    TextDelta,
    TextResult,
    Tool,
    ToolCall,
)
from localoip.runtimes.folding import gather
from localoip.runtimes.remote.oip import _chat_parameters, _reply
from localoip.runtimes.remote.openai import _chat_body, _message
from localoip.runtimes.wire.controls import reasoning_fields
from localoip.runtimes.wire.oip import Tensor
from localoip.runtimes.wire.openai import chat as wire
from localoip.runtimes.wire.openai.requests import ChatCompletionRequest, chat_request
from localoip.runtimes.wire.openai.responses.events import replay
from localoip.runtimes.wire.openai.responses.items import (
    FunctionCallItem,
    ReasoningItem,
    ReasoningText,
    message_item,
    user_message,
)
from localoip.runtimes.wire.openai.responses.objects import Response
from support.openai_spec import SPEC, conform

NEEDS_SPEC = pytest.mark.skipif(
    not SPEC.is_file(), reason="the OpenAI spec lives in ../shared/specs"
)
THOUGHT = ["The user asks", " for Paris's weather."]
# A reasoning model's stream as the runtime gives it: reasoning first, then the answer.
STREAM = [
    TextDelta("", reasoning=THOUGHT[0]),
    TextDelta("", reasoning=THOUGHT[1]),
    TextDelta("Sunny"),
    TextDelta(".", "stop", usage=(12, 9), reasoning_tokens=6),
]
WEATHER = ToolCall("call_a", "get_weather", '{"city": "Paris"}')


def built(deltas: list[TextDelta]) -> tuple[list[dict[str, Any]], list[dict[str, Any]], Any]:
    """A Responses OutputBuilder's items and events, as JSON, and its usage."""
    out = OutputBuilder()
    events = [e for d in deltas for e in out.add(d)] + out.finish()
    return msgspec.to_builtins(out.output), msgspec.to_builtins(events), out.usage


# -- the controls -----------------------------------------------------------------------------


def test_every_effort_and_the_other_controls_fill_the_chat_request():
    body = {
        "messages": [{"role": "user", "content": "hi"}],
        "reasoning_effort": "low",
        "chat_template_kwargs": {"enable_thinking": False},
        "max_reasoning_tokens": 0,
        "parallel_tool_calls": False,
    }
    chat = chat_request(msgspec.json.decode(msgspec.json.encode(body), type=ChatCompletionRequest))
    assert (chat.reasoning_effort, chat.template_kwargs, chat.max_reasoning_tokens) == (
        "low",
        {"enable_thinking": False},
        0,
    )
    assert chat.parallel_tool_calls is False
    for effort in ("none", "minimal", "low", "medium", "high"):
        assert reasoning_fields(effort, None, None)["reasoning_effort"] == effort


def test_a_chat_that_sets_nothing_leaves_every_choice_to_the_model():
    assert reasoning_fields(None, None, None) == {
        "reasoning_effort": None,
        "template_kwargs": None,
        "max_reasoning_tokens": None,
    }


@pytest.mark.parametrize(
    ("effort", "kwargs", "budget", "param"),
    [
        ("extreme", None, None, "reasoning.effort"),
        (3, None, None, "reasoning.effort"),
        (None, [1], None, "chat_template_kwargs"),
        (None, "enable_thinking", None, "chat_template_kwargs"),
        (None, None, -1, "max_reasoning_tokens"),
        (None, None, 1.5, "max_reasoning_tokens"),
        (None, None, True, "max_reasoning_tokens"),
    ],
)
def test_bad_controls_are_input_errors_naming_the_field(effort, kwargs, budget, param):
    with pytest.raises(InputError) as caught:
        reasoning_fields(effort, kwargs, budget, "reasoning.effort")
    assert caught.value.param == param


def test_oip_parameters_take_the_chat_completions_names_nested_or_not():
    chat = parameters.chat_request(
        [ChatMessage("user", "hi")],
        {"reasoning_effort": "high", "kwargs": {"chat_template_kwargs": {"x": 1}}},
    )
    assert (chat.reasoning_effort, chat.template_kwargs, chat.parallel_tool_calls) == (
        "high",
        {"x": 1},
        None,  # not given: the model's own way (a forced reply makes one call)
    )
    given = parameters.chat_request([ChatMessage("user", "hi")], {"parallel_tool_calls": False})
    assert given.parallel_tool_calls is False


# -- chat completions ---------------------------------------------------------------------


def test_a_reply_with_reasoning_has_reasoning_content_and_counts_its_tokens():
    result = gather(STREAM)
    body = msgspec.to_builtins(wire.chat_completion("m", [result]))
    message = body["choices"][0]["message"]
    assert (message["reasoning_content"], message["content"]) == ("".join(THOUGHT), "Sunny.")
    assert body["usage"]["completion_tokens_details"] == {"reasoning_tokens": 6}
    assert "reasoning" not in message  # vLLM's newer name is read, never sent


def test_a_reply_without_reasoning_has_no_reasoning_content():
    body = msgspec.to_builtins(wire.chat_completion("m", [TextResult("hi", "stop", 3, 1)]))
    assert "reasoning_content" not in body["choices"][0]["message"]
    assert body["usage"]["completion_tokens_details"] == {"reasoning_tokens": 0}


def test_streamed_reasoning_goes_out_as_reasoning_content_before_the_content():
    deltas = [
        msgspec.to_builtins(wire.chunk_choice(0, d, first=i == 0).delta)
        for i, d in enumerate(STREAM)
    ]
    assert deltas[0] == {"role": "assistant", "content": "", "reasoning_content": THOUGHT[0]}
    assert deltas[1] == {"reasoning_content": THOUGHT[1]}
    assert deltas[2:] == [{"content": "Sunny"}, {"content": "."}]


def test_an_upstreams_reasoning_is_read_back_whole_and_streamed():
    """What the remote OpenAI runtime reads: our own answers, and vLLM's `reasoning` name."""
    made = wire.chat_completion("m", [gather(STREAM)])
    back = wire.chat_result(
        msgspec.json.decode(msgspec.json.encode(made), type=wire.ChatCompletion)
    )
    assert (back.reasoning, back.text, back.reasoning_tokens) == ("".join(THOUGHT), "Sunny.", 6)
    vllm = {"index": 0, "delta": {"reasoning": "hmm"}, "finish_reason": None}
    assert wire.chunk_delta(msgspec.convert(vllm, wire.ChunkChoice)).reasoning == "hmm"
    ours = wire.chunk_choice(0, STREAM[0], first=True)
    assert wire.chunk_delta(ours).reasoning == THOUGHT[0]


@NEEDS_SPEC
def test_the_reply_matches_the_published_schema():
    body = msgspec.to_builtins(wire.chat_completion("m", [gather(STREAM)]))
    conform("CreateChatCompletionResponse", body)  # reasoning_content is an extra it allows


# -- the Responses API ----------------------------------------------------------------------


def test_reasoning_is_an_item_before_the_message_with_its_events():
    output, events, usage = built(STREAM)
    assert [i["type"] for i in output] == ["reasoning", "message"]
    reasoning = output[0]
    assert reasoning["id"].startswith("rs_") and reasoning["summary"] == []
    assert reasoning["content"] == [{"type": "reasoning_text", "text": "".join(THOUGHT)}]
    assert [(e["type"].removeprefix("response."), e["output_index"]) for e in events] == [
        ("output_item.added", 0),
        ("content_part.added", 0),
        ("reasoning_text.delta", 0),
        ("reasoning_text.delta", 0),
        ("reasoning_text.done", 0),
        ("content_part.done", 0),
        ("output_item.done", 0),
        ("output_item.added", 1),
        ("content_part.added", 1),
        ("output_text.delta", 1),
        ("output_text.delta", 1),
        ("output_text.done", 1),
        ("content_part.done", 1),
        ("output_item.done", 1),
    ]
    assert events[1]["part"] == {"type": "reasoning_text", "text": ""}
    assert [e["delta"] for e in events[2:4]] == THOUGHT
    assert events[4]["text"] == "".join(THOUGHT)
    assert usage == (12, 9, 0, 6)  # input, output, cached, reasoning


@NEEDS_SPEC
def test_reasoning_items_and_events_match_the_published_schema():
    output, events, _ = built(STREAM)
    conform("ReasoningItem", output[0])
    conform("OutputItem", output[0])
    for event in events:
        conform("ResponseStreamEvent", event)


def test_reasoning_before_a_call_closes_when_the_call_begins():
    output, _, _ = built(
        [TextDelta("", reasoning="I need the weather."), TextDelta("", "tool_calls", (WEATHER,))]
    )
    assert [(i["type"], i["status"]) for i in output] == [
        ("reasoning", "completed"),
        ("function_call", "completed"),
    ]


def test_reasoning_cut_by_the_token_limit_is_incomplete_and_an_empty_message_follows():
    output, _, _ = built([TextDelta("", reasoning="Let me"), TextDelta("", "length", usage=(1, 2))])
    assert [(i["type"], i["status"]) for i in output] == [
        ("reasoning", "incomplete"),
        ("message", "incomplete"),
    ]


def test_a_finished_response_with_reasoning_replays_the_same_kinds_of_events():
    output, events, _ = built(STREAM)
    response = {
        "id": "resp_1",
        "created_at": 0,
        "status": "completed",
        "background": False,
        "metadata": {},
        "model": "m",
        "output": output,
        "parallel_tool_calls": True,
        "store": True,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
    }
    told = msgspec.to_builtins(replay(msgspec.convert(response, Response)))
    middle = [e["type"] for e in told[2:-1]]
    live = [e["type"] for e in events]
    # Replayed, each item's text comes in one delta.
    assert middle == [t for i, t in enumerate(live) if t != live[i - 1] or "delta" not in t]


# -- OIP ----------------------------------------------------------------------------------


def test_oip_chat_outputs_carry_a_reasoning_tensor_only_when_there_is_reasoning():
    assert [o.name for o in chat_outputs("Sunny.", "")] == ["role", "content"]
    outputs = chat_outputs("Sunny.", "The user asks")
    assert [(o.name, o.datatype, o.shape, o.values) for o in outputs][2] == (
        "reasoning",
        "BYTES",
        [1],
        ["The user asks"],
    )


# -- remote upstreams: the controls go on ---------------------------------------------------


def test_a_remote_openai_upstream_gets_the_controls_that_were_given_and_no_others():

    asked = [ChatMessage("user", "hi")]
    plain = _chat_body("up", ChatRequest(asked))
    assert not {"reasoning_effort", "chat_template_kwargs", "max_reasoning_tokens"} & set(plain)
    assert "parallel_tool_calls" not in plain
    body = _chat_body(
        "up",
        ChatRequest(
            asked,
            tools=(Tool("f"),),
            parallel_tool_calls=False,
            **reasoning_fields("low", {"enable_thinking": True}, 32),
        ),
    )
    assert (body["reasoning_effort"], body["chat_template_kwargs"]) == (
        "low",
        {"enable_thinking": True},
    )
    assert (body["max_reasoning_tokens"], body["parallel_tool_calls"]) == (32, False)


def test_a_remote_oip_upstream_gets_the_controls_as_parameters_and_its_reasoning_is_read():

    request = ChatRequest([ChatMessage("user", "hi")], **reasoning_fields("none", None, 0))
    assert _chat_parameters(request) == {"reasoning_effort": "none", "max_reasoning_tokens": 0}
    tensors = {
        o.name: Tensor(o.name, o.datatype, o.shape, [v.encode() for v in o.values], {})
        for o in chat_outputs("Sunny.", "The user asks")
    }
    reply = _reply(tensors)
    assert (reply.text, reply.reasoning) == ("Sunny.", "The user asks")


# -- reasoning given back -------------------------------------------------------------------


def test_a_chats_reasoning_content_goes_with_its_assistant_message():
    body = {
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "Hello!", "reasoning_content": "A greeting."},
            {"role": "user", "content": "again"},
        ]
    }
    chat = chat_request(msgspec.convert(body, ChatCompletionRequest))
    assert [m.reasoning for m in chat.messages] == [None, "A greeting.", None]
    assert _message(chat.messages[1])["reasoning_content"] == "A greeting."
    assert "reasoning_content" not in _message(chat.messages[0])


def test_a_reasoning_item_goes_with_the_assistant_turn_that_follows_it():
    def thought(text: str) -> ReasoningItem:
        return ReasoningItem(id="rs_1", content=[ReasoningText(text=text)])

    items = [
        user_message("weather?"),
        thought("I should call."),
        FunctionCallItem(id="fc_1", call_id="c1", name="get_weather", arguments="{}"),
        thought("It is sunny."),
        message_item("msg_1", "assistant", ["Sunny."]),
        thought("Nothing follows me."),
        user_message("thanks"),
    ]
    messages = chat_messages(None, items, sealer=None)  # type: ignore[arg-type]
    assert [(m.role, m.reasoning) for m in messages] == [
        ("user", None),
        ("assistant", "I should call."),
        ("assistant", "It is sunny."),
        ("user", None),
    ]
