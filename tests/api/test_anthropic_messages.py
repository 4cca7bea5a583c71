"""The Anthropic Messages API in process, through the real `anthropic` SDK: replies whole and
streamed, system prompts, turns, tools and their results, thinking on scripted reasoning
models (support/scripted.py), token counts and the model list. The same greedy answer as the
other protocols' is test_surfaces_agree.py's."""

from __future__ import annotations

import json
from collections.abc import Iterator

import anthropic
import pytest
from support.configs import scripted_chats, tiny_chat
from support.families import QWEN3, QWEN25
from support.family import ANSWER, ARGUMENTS, CALL_REASONING, REASONING
from support.inprocess import Apps, InProcessApp
from support.scripted import Turn, build_scripted_gguf
from support.tiny_models import build_tiny_gguf

ASK = [{"role": "user", "content": "What is the weather in Paris?"}]
HI = [{"role": "user", "content": "hi"}]
WEATHER = {
    "name": "get_weather",
    "description": "Current weather in a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 12}, "unit": {"enum": ["C", "F"]}},
        "required": ["city", "unit"],
    },
}
# anthropic 2.17's create() has no temperature (Anthropic's newest models take none); the API,
# and localoip, still do.
GREEDY = {"extra_body": {"temperature": 0}}
SCRIPTED = ["qwen3-thinking", "qwen3-calling", "qwen2.5-turns"]


@pytest.fixture(scope="module")
def app(apps: Apps, tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessApp]:
    """The tiny random chat model; Qwen3 models that think, then answer or call get_weather;
    a Qwen2.5 model that calls get_weather, then answers once the result says "sunny"."""
    folder = tmp_path_factory.mktemp("anthropic")
    build_tiny_gguf(folder / "tiny.gguf")
    build_scripted_gguf(folder / "qwen3-thinking.gguf", family=QWEN3, script=QWEN3.thinking)
    build_scripted_gguf(folder / "qwen3-calling.gguf", family=QWEN3, script=QWEN3.calling)
    build_scripted_gguf(
        folder / "qwen2.5-turns.gguf",
        family=QWEN25,
        script=[str(QWEN25.calling), Turn(ANSWER, cue="sunny")],
    )
    config = tiny_chat(folder) + scripted_chats(folder, SCRIPTED)
    with apps.shared(config) as running:
        yield running


@pytest.fixture(scope="module")
def client(app: InProcessApp) -> anthropic.Anthropic:
    return app.anthropic()


def test_a_message_is_a_text_block_with_its_stop_reason_and_usage(client):
    reply = client.messages.create(
        model="tiny-chat", max_tokens=8, messages=HI, system="Be brief.", **GREEDY
    )
    assert (reply.type, reply.role, reply.model) == ("message", "assistant", "tiny-chat")
    assert reply.id.startswith("msg_") and [b.type for b in reply.content] == ["text"]
    assert (reply.stop_reason, reply.stop_sequence, reply.usage.output_tokens) == (
        "max_tokens",
        None,
        8,
    )
    assert reply.usage.input_tokens + reply.usage.cache_read_input_tokens > 10


def test_a_stream_gives_the_same_text_as_the_whole_reply(client):
    whole = client.messages.create(model="tiny-chat", max_tokens=12, messages=HI, **GREEDY)
    with client.messages.stream(model="tiny-chat", max_tokens=12, messages=HI, **GREEDY) as stream:
        types = [event.type for event in stream]
        final = stream.get_final_message()
    assert final.content[0].text == whole.content[0].text
    assert (final.stop_reason, final.usage.output_tokens) == ("max_tokens", 12)
    assert types[0] == "message_start" and types[-2:] == ["message_delta", "message_stop"]
    assert types.count("content_block_start") == types.count("content_block_stop") == 1


def test_the_raw_stream_has_named_events_and_a_ping(app):
    body = {"model": "tiny-chat", "max_tokens": 3, "messages": HI, "stream": True}
    with app.client() as http:
        text = http.post("/v1/messages", json=body).text
    names = [
        line.removeprefix("event: ") for line in text.splitlines() if line.startswith("event:")
    ]
    assert names[:3] == ["message_start", "ping", "content_block_start"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]


def test_a_system_prompt_and_earlier_turns_reach_the_prompt(client):
    def counted(**fields: object) -> int:
        return client.messages.count_tokens(model="tiny-chat", **fields).input_tokens

    alone = counted(messages=HI)
    assert counted(messages=HI, system="You answer in French.") > alone
    assert counted(system=[{"type": "text", "text": "You answer in French."}], messages=HI) > alone
    turns = [*HI, {"role": "assistant", "content": "hello"}, {"role": "user", "content": "again"}]
    assert counted(messages=turns) > alone


def test_count_tokens_equals_what_the_message_counts(client):
    fields = {"model": "tiny-chat", "messages": HI, "system": "Be brief."}
    counted = client.messages.count_tokens(**fields).input_tokens
    usage = client.messages.create(max_tokens=2, **fields).usage
    assert counted == usage.input_tokens + usage.cache_read_input_tokens


def test_a_stop_sequence_ends_the_reply_and_is_named(client):
    whole = client.messages.create(model="tiny-chat", max_tokens=12, messages=HI, **GREEDY)
    text = whole.content[0].text
    stop = text[3:5]
    reply = client.messages.create(
        model="tiny-chat", max_tokens=12, messages=HI, **GREEDY, stop_sequences=[stop]
    )
    assert (reply.stop_reason, reply.stop_sequence) == ("stop_sequence", stop)
    assert reply.content[0].text == text[: text.index(stop)]


def test_an_assistant_message_last_is_continued(client):
    start = client.messages.create(model="tiny-chat", max_tokens=6, messages=HI, **GREEDY)
    text = start.content[0].text
    rest = client.messages.create(
        model="tiny-chat",
        max_tokens=3,
        **GREEDY,
        messages=[*HI, {"role": "assistant", "content": text[:3]}],
    )
    assert text.startswith(text[:3] + rest.content[0].text)


def test_thinking_comes_as_a_thinking_block_before_the_answer(client):
    reply = client.messages.create(
        model="qwen3-thinking",
        max_tokens=200,
        messages=ASK,
        **GREEDY,
        thinking={"type": "enabled", "budget_tokens": 1024},
    )
    assert [
        (b.type, getattr(b, "thinking", None) or getattr(b, "text", None)) for b in reply.content
    ] == [
        ("thinking", REASONING),
        ("text", ANSWER),
    ]
    assert reply.stop_reason == "end_turn"
    with client.messages.stream(
        model="qwen3-thinking", max_tokens=200, messages=ASK, **GREEDY
    ) as stream:
        deltas = [e.delta.type for e in stream if e.type == "content_block_delta"]
        final = stream.get_final_message()
    assert final.content[0].thinking == REASONING and final.content[1].text == ANSWER
    assert deltas.index("text_delta") > deltas.index("thinking_delta")


def test_thinking_disabled_turns_the_template_s_switch_off(client):
    def counted(thinking: dict) -> int:
        return client.messages.count_tokens(
            model="qwen3-thinking", messages=ASK, thinking=thinking
        ).input_tokens

    # Qwen3's template closes an empty <think></think> in the prompt when thinking is off.
    assert counted({"type": "disabled"}) > counted({"type": "enabled", "budget_tokens": 1024})


def test_a_thinking_budget_closes_the_reasoning_early(client):
    reply = client.messages.create(
        model="qwen3-thinking",
        max_tokens=200,
        messages=ASK,
        **GREEDY,
        thinking={"type": "enabled", "budget_tokens": 2},
    )
    thinking = reply.content[0]
    assert thinking.type == "thinking" and REASONING.startswith(thinking.thinking)
    assert len(thinking.thinking) < len(REASONING)


def test_omitted_thinking_keeps_the_block_without_its_text(client):
    reply = client.messages.create(
        model="qwen3-thinking",
        max_tokens=200,
        messages=ASK,
        **GREEDY,
        thinking={"type": "adaptive", "display": "omitted"},
    )
    assert [(b.type, getattr(b, "thinking", None)) for b in reply.content] == [
        ("thinking", ""),
        ("text", None),
    ]


def test_a_tool_call_is_a_tool_use_block_whole_and_streamed(client):
    fields = {"model": "qwen3-calling", "max_tokens": 200, "messages": ASK, "tools": [WEATHER]}
    reply = client.messages.create(**GREEDY, **fields)
    thinking, call = reply.content
    assert (thinking.thinking, call.type, call.name, call.input) == (
        CALL_REASONING,
        "tool_use",
        "get_weather",
        json.loads(ARGUMENTS),
    )
    assert call.id and reply.stop_reason == "tool_use"
    with client.messages.stream(**GREEDY, **fields) as stream:
        events = list(stream)
        final = stream.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "tool_use"]
    assert final.content[1].input == json.loads(ARGUMENTS) and final.stop_reason == "tool_use"
    assert {e.delta.type for e in events if e.type == "content_block_delta"} == {
        "thinking_delta",
        "input_json_delta",
    }


def test_after_the_tool_result_the_model_answers(client):
    first = client.messages.create(
        model="qwen2.5-turns", max_tokens=200, messages=ASK, tools=[WEATHER], **GREEDY
    )
    (call,) = first.content
    second = client.messages.create(
        model="qwen2.5-turns",
        max_tokens=200,
        **GREEDY,
        tools=[WEATHER],
        messages=[
            *ASK,
            {"role": "assistant", "content": first.content},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": call.id, "content": "sunny, 24 C"}
                ],
            },
        ],
    )
    assert [(b.type, b.text) for b in second.content] == [("text", ANSWER)]
    assert second.stop_reason == "end_turn"


@pytest.mark.parametrize(
    "choice",
    [{"type": "any"}, {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True}],
)
def test_a_forced_tool_choice_makes_the_tiny_model_call(client, choice):
    reply = client.messages.create(
        model="tiny-chat",
        max_tokens=60,
        messages=HI,
        tools=[WEATHER],
        tool_choice=choice,
        **GREEDY,
    )
    calls = [b for b in reply.content if b.type == "tool_use"]
    assert len(calls) == 1 and calls[0].name == "get_weather"


def test_tool_choice_none_answers_without_calling(client):
    reply = client.messages.create(
        model="qwen2.5-turns",
        max_tokens=200,
        messages=ASK,
        tools=[WEATHER],
        tool_choice={"type": "none"},
        **GREEDY,
    )
    assert all(b.type == "text" for b in reply.content) and reply.stop_reason != "tool_use"


def test_output_config_s_schema_shapes_the_reply(client):
    schema = {
        "type": "object",
        "properties": {"colour": {"enum": ["red", "blue"]}},
        "required": ["colour"],
        "additionalProperties": False,
    }
    reply = client.messages.create(
        model="tiny-chat",
        max_tokens=40,
        messages=HI,
        output_config={"format": {"type": "json_schema", "schema": schema}},
        **GREEDY,
    )
    assert reply.stop_reason == "end_turn"
    assert json.loads(reply.content[0].text)["colour"] in ("red", "blue")


def test_the_model_list_is_anthropic_s_for_its_clients_and_openai_s_otherwise(app, client):
    names = [m.id for m in client.models.list()]
    assert names == ["tiny-chat", *SCRIPTED]
    model = client.models.retrieve("tiny-chat")
    assert (model.type, model.display_name, model.max_input_tokens) == ("model", "tiny-chat", 512)
    page = client.models.list(limit=2)
    assert [m.id for m in page.data] == names[:2] and page.has_more
    assert [m.id for m in client.models.list(limit=2, after_id=names[1]).data] == names[2:]
    assert app.openai().models.list().data[0].object == "model"
    under = app.anthropic(base="/anthropic")
    assert [m.id for m in under.models.list()] == names


def test_the_anthropic_prefix_serves_messages_too(app):
    reply = app.anthropic(base="/anthropic").messages.create(
        model="tiny-chat", max_tokens=2, messages=HI
    )
    assert reply.usage.output_tokens == 2


def test_an_unknown_model_is_not_found(client):
    with pytest.raises(anthropic.NotFoundError) as error:
        client.messages.create(model="nope", max_tokens=2, messages=HI)
    assert error.value.body["error"]["type"] == "not_found_error"
    with pytest.raises(anthropic.NotFoundError):
        client.models.retrieve("nope")


def test_an_image_to_a_model_without_a_projector_is_refused_by_name(client):
    image = {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}
    with pytest.raises(anthropic.BadRequestError) as error:
        client.messages.create(
            model="tiny-chat",
            max_tokens=4,
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "image", "source": image},
                        {"type": "text", "text": "What is this?"},
                    ],
                }
            ],
        )
    message = error.value.body["error"]["message"]
    assert message.startswith("messages[0].content[0]: this model reads no images"), message
