"""Ollama's wire format read into neutral requests, and neutral results written as its
objects (runtimes/wire/ollama): no app, no model."""

from __future__ import annotations

import json

import msgspec
import ollama
import pytest
from localoip.runtimes import capabilities as base
from localoip.runtimes.capabilities import Capability, InputError
from localoip.runtimes.wire.ollama import requests as wire
from localoip.runtimes.wire.ollama.responses import done_reason, message


def chat(**body: object) -> wire.ChatRequest:
    return msgspec.json.decode(json.dumps({"model": "m", **body}), type=wire.ChatRequest)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (None, None),
        (0, 0),
        ("0", 0),
        ("0s", 0),
        ("5m", 300),
        ("1h30m", 5400),
        (-1, -1),
        ("-1", -1),
        ("1.5s", 1.5),
        ("300ms", 0.3),
    ],
)
def test_keep_alive_is_seconds_or_a_go_duration(value, seconds):
    expected = None if seconds is None else pytest.approx(seconds)
    assert wire.keep_alive_seconds(value) == expected


@pytest.mark.parametrize("value", ["soon", "5 m", "m", "", "nan"])
def test_a_keep_alive_that_is_no_duration_is_an_input_error(value):
    with pytest.raises(InputError) as error:
        wire.keep_alive_seconds(value)
    assert error.value.param == "keep_alive"


@pytest.mark.parametrize(
    ("name", "source"),
    [
        (
            "hf.co/bartowski/SmolLM2-135M-Instruct-GGUF:Q4_K_M",
            "hf:bartowski/SmolLM2-135M-Instruct-GGUF:Q4_K_M",
        ),
        ("huggingface.co/owner/repo", "hf:owner/repo"),
        ("hf.co/owner/repo:latest", "hf:owner/repo"),
        ("smollm2:latest", None),
    ],
)
def test_hugging_face_names_are_hf_sources(name, source):
    assert wire.hub_source(name) == source


def test_options_become_sampling_and_num_predict_minus_one_is_no_limit():
    req = chat(
        messages=[],
        options={
            "num_predict": -1,
            "temperature": 0.2,
            "min_p": 0.1,
            "stop": "x",
            "repeat_penalty": 1.1,
            "mirostat": 2,
        },
    )
    sampling = wire.sampling(req.options, Capability.CHAT)
    assert (sampling.max_tokens, sampling.temperature, sampling.min_p, sampling.stop) == (
        None,
        0.2,
        0.1,
        ("x",),
    )
    assert (
        wire.sampling(chat(options={"num_predict": 0}).options, Capability.COMPLETION).max_tokens
        == 0
    )
    with pytest.raises(InputError):
        wire.sampling(chat(options={"num_predict": 0}).options, Capability.CHAT)


def test_think_is_an_effort_and_format_a_schema():
    assert [wire.effort(t) for t in (None, True, False, "high")] == [None, "medium", "none", "high"]
    with pytest.raises(InputError) as error:
        wire.effort("hard")
    assert error.value.param == "think"
    assert (wire.json_schema(""), wire.json_schema("json")) == (None, {})
    assert wire.json_schema({"type": "object"}) == {"type": "object"}
    with pytest.raises(InputError):
        wire.json_schema(["json"])


def test_a_tool_result_answers_the_call_of_its_name_and_calls_get_nine_character_ids():
    req = chat(
        messages=[
            {"role": "user", "content": "weather and time?"},
            {
                "role": "assistant",
                "tool_calls": [
                    {"function": {"name": "get_time", "arguments": {}}},
                    {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
                ],
            },
            {"role": "tool", "tool_name": "get_weather", "content": "sunny"},
            {"role": "tool", "content": "noon"},
        ]
    )
    messages = wire.chat_request(req).messages
    time, weather = messages[1].tool_calls
    assert (len(time.id), weather.arguments, messages[1].content) == (9, '{"city": "Paris"}', None)
    assert (messages[2].tool_call_id, messages[2].name) == (weather.id, "get_weather")
    assert messages[3].tool_call_id == time.id


def test_images_stand_before_their_messages_text():
    request = wire.chat_request(
        chat(messages=[{"role": "user", "content": "x", "images": ["aGk="]}])
    )
    (turn,) = request.messages
    assert (turn.content, turn.images) == (
        f"{base.IMAGE_MARKER}x",
        (base.ChatImage(b"hi", "messages[0].images[0]"),),
    )


def test_images_that_are_not_base64_are_refused_by_name():
    bad = [{"role": "user", "content": "x", "images": ["aGk=", "@@"]}]
    with pytest.raises(InputError, match="not valid base64") as error:
        wire.chat_request(chat(messages=bad))
    assert error.value.param == "messages[0].images[1]"


def test_generate_is_a_chat_unless_raw_or_with_a_suffix():
    def generate(**body: object) -> tuple[Capability, object]:
        req = msgspec.json.decode(json.dumps({"model": "m", **body}), type=wire.GenerateRequest)
        return wire.generate_request(req)

    capability, request = generate(prompt="hi", system="be brief")
    assert capability is Capability.CHAT
    assert [m.role for m in request.messages] == ["system", "user"]
    assert generate(prompt="def f(", raw=True)[0] is Capability.COMPLETION
    capability, request = generate(prompt="def f(", suffix="return 1")
    assert (capability, request.suffix) == (Capability.COMPLETION, "return 1")


def test_a_reply_is_ollama_s_message_and_done_reason():
    call = base.ToolCall("call1", "get_weather", '{"city": "Paris"}')
    out = msgspec.to_builtins(message("", "hmm", (call,)))
    assert out == {
        "role": "assistant",
        "content": "",
        "thinking": "hmm",
        "tool_calls": [
            {
                "id": "call1",
                "function": {"index": 0, "name": "get_weather", "arguments": {"city": "Paris"}},
            }
        ],
    }
    assert [done_reason(r) for r in ("stop", "length", "tool_calls")] == ["stop", "length", "stop"]


@pytest.mark.parametrize("arguments", ['{"city": "Par', "[1, 2]", "7", ""])
def test_a_call_s_arguments_are_an_object_the_ollama_client_reads(arguments):
    call = base.ToolCall("call_1", "get_weather", arguments)
    sent = msgspec.json.decode(msgspec.json.encode(message("", calls=(call,))))
    ollama_message = ollama.Message.model_validate(sent)  # the client's own parse
    assert ollama_message.tool_calls[0].function.arguments == {}
