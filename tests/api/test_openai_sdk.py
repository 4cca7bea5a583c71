"""The official openai SDK on the app in process, at /v1 and at the Seldon-style sub-routes."""

from __future__ import annotations

import base64
import io
import json
import logging

import jsonschema
import numpy as np
import pytest
from openai import BadRequestError, OpenAI
from PIL import Image
from support.chats import HI, WEATHER
from support.inprocess import InProcessApp

STYLES = ["v1", "kserve", "seldon", "seldon-stream"]


def client_for(app: InProcessApp, style: str, model: str) -> OpenAI:
    base = {
        "v1": "/v1",
        "kserve": "/openai/v1",
        "seldon": f"/v2/models/{model}/infer",
        "seldon-stream": f"/v2/models/{model}/infer_stream/",
    }[style]
    return app.openai(base, api_key="any key works without LOCALOIP_API_KEY")


TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {
            "type": "object",
            "properties": {"zone": {"enum": ["UTC", "CET"]}},
            "required": ["zone"],
            "additionalProperties": False,
        },
    },
}


@pytest.mark.parametrize("style", STYLES)
def test_chat_completion_in_every_url_style(app, style):
    client = client_for(app, style, "tiny-chat")
    reply = client.chat.completions.create(
        model="tiny-chat", messages=HI, max_tokens=5, temperature=0
    )
    choice = reply.choices[0]
    assert reply.object == "chat.completion" and reply.model == "tiny-chat"
    assert choice.message.role == "assistant" and choice.message.content
    assert choice.finish_reason == "length"
    assert reply.usage.completion_tokens == 5 and reply.usage.prompt_tokens > 0
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + 5


@pytest.mark.parametrize("style", STYLES)
def test_streamed_chat_adds_up_to_the_whole_reply_and_reports_usage(app, style):
    client = client_for(app, style, "tiny-chat")
    whole = client.chat.completions.create(
        model="tiny-chat", messages=HI, max_tokens=6, temperature=0
    )
    chunks = list(
        client.chat.completions.create(
            model="tiny-chat",
            messages=HI,
            max_tokens=6,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    finishes = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finishes == ["length"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 6
    assert chunks[-1].usage.prompt_tokens == whole.usage.prompt_tokens


def test_stream_ends_with_done(http):
    body = {"model": "tiny-chat", "messages": HI, "max_tokens": 2, "stream": True}
    with http.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    assert json.loads(lines[0][6:])["object"] == "chat.completion.chunk"


def test_optional_fields_may_be_null(http):
    body = {
        "model": "tiny-chat",
        "messages": HI,
        "max_tokens": 2,
        "stream": None,
        "n": None,
        "logprobs": None,
        "temperature": None,
    }
    reply = http.post("/v1/chat/completions", json=body).json()
    assert reply["choices"][0]["logprobs"] is None and len(reply["choices"]) == 1
    body = {"model": "minilm", "input": "x", "encoding_format": None}
    assert len(http.post("/v1/embeddings", json=body).json()["data"][0]["embedding"]) == 384


def test_every_role_and_text_parts_are_accepted(v1):
    reply = v1.chat.completions.create(
        model="tiny-chat",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Use tools."}]},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Weather "},
                    {"type": "text", "text": "in Oslo?"},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {
                            "name": "get_weather",
                            "arguments": '{"city": "Oslo", "unit": "C"}',
                        },
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "4 degrees"},
        ],
        max_tokens=4,
        temperature=0,
    )
    assert reply.choices[0].message.content


def test_max_completion_tokens_and_stop(v1):
    full = v1.chat.completions.create(
        model="tiny-chat", messages=HI, max_completion_tokens=8, temperature=0
    )
    text = full.choices[0].message.content
    assert full.usage.completion_tokens == 8
    cut = v1.chat.completions.create(
        model="tiny-chat", messages=HI, max_tokens=8, temperature=0, stop=[text[3:5], "never"]
    )
    assert cut.choices[0].message.content == text[: text.index(text[3:5])]
    assert cut.choices[0].finish_reason == "stop"


def test_n_choices_differ_by_seed_and_penalties_are_accepted(v1):
    reply = v1.chat.completions.create(
        model="tiny-chat",
        messages=HI,
        max_tokens=6,
        temperature=1.5,
        seed=11,
        n=3,
        presence_penalty=0.5,
        frequency_penalty=0.5,
        top_p=0.9,
    )
    assert [c.index for c in reply.choices] == [0, 1, 2]
    assert len({c.message.content for c in reply.choices}) > 1
    again = v1.chat.completions.create(
        model="tiny-chat",
        messages=HI,
        max_tokens=6,
        temperature=1.5,
        seed=11,
        n=3,
        presence_penalty=0.5,
        frequency_penalty=0.5,
        top_p=0.9,
    )
    assert [c.message.content for c in again.choices] == [c.message.content for c in reply.choices]
    assert reply.usage.completion_tokens == 18


def test_logit_bias_forces_a_token(v1):
    # The tiny vocabulary starts with GPT-2's printable bytes from '!' (33): 'Z' is id 57.
    reply = v1.chat.completions.create(
        model="tiny-chat", messages=HI, max_tokens=4, temperature=0, logit_bias={"57": 100}
    )
    assert reply.choices[0].message.content == "ZZZZ"


def test_logprobs_and_top_logprobs(v1):
    reply = v1.chat.completions.create(
        model="tiny-chat", messages=HI, max_tokens=4, temperature=0, logprobs=True, top_logprobs=3
    )
    content = reply.choices[0].logprobs.content
    assert len(content) == 4
    assert "".join(t.token for t in content) == reply.choices[0].message.content
    for token in content:
        assert token.logprob <= 0 and len(token.top_logprobs) == 3
        assert token.bytes == list(token.token.encode())
        assert token.top_logprobs[0].logprob >= token.top_logprobs[-1].logprob
    plain = v1.chat.completions.create(model="tiny-chat", messages=HI, max_tokens=4, temperature=0)
    assert plain.choices[0].logprobs is None
    assert plain.choices[0].message.content == reply.choices[0].message.content


def test_json_object_output_parses(v1):
    reply = v1.chat.completions.create(
        model="tiny-chat",
        messages=HI,
        max_tokens=60,
        temperature=0,
        response_format={"type": "json_object"},
    )
    assert isinstance(json.loads(reply.choices[0].message.content), dict)


def test_json_schema_output_validates(v1):
    schema = {
        "type": "object",
        "properties": {
            "count": {"type": "integer"},
            "ok": {"type": "boolean"},
            "color": {"enum": ["red", "green"]},
        },
        "required": ["count", "ok", "color"],
        "additionalProperties": False,
    }
    reply = v1.chat.completions.create(
        model="tiny-chat",
        messages=HI,
        max_tokens=80,
        temperature=0,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "answer", "schema": schema},
        },
    )
    assert reply.choices[0].finish_reason == "stop"
    jsonschema.validate(json.loads(reply.choices[0].message.content), schema)


@pytest.mark.parametrize(
    "choice", ["required", {"type": "function", "function": {"name": "get_weather"}}]
)
def test_forced_tool_calls_come_back_parsed(v1, choice):
    reply = v1.chat.completions.create(
        model="tiny-chat",
        messages=[{"role": "user", "content": "Weather in Oslo?"}],
        tools=[WEATHER],
        tool_choice=choice,
        max_tokens=150,
        temperature=0,
    )
    message = reply.choices[0].message
    assert reply.choices[0].finish_reason == "tool_calls"
    assert message.content is None
    (call,) = message.tool_calls
    assert call.type == "function" and call.id.startswith("call_")
    if isinstance(choice, dict):
        assert call.function.name == "get_weather"
    tool = {"get_weather": WEATHER, "get_time": TIME}[call.function.name]
    jsonschema.validate(json.loads(call.function.arguments), tool["function"]["parameters"])


def test_required_tool_choice_picks_among_several_tools(v1):
    reply = v1.chat.completions.create(
        model="tiny-chat",
        messages=HI,
        tools=[WEATHER, TIME],
        tool_choice="required",
        max_tokens=150,
        temperature=0,
    )
    assert reply.choices[0].message.tool_calls[0].function.name in {"get_weather", "get_time"}


def test_tool_choice_none_answers_in_text(v1):
    reply = v1.chat.completions.create(
        model="tiny-chat",
        messages=HI,
        tools=[WEATHER],
        tool_choice="none",
        max_tokens=5,
        temperature=0,
    )
    assert reply.choices[0].message.tool_calls is None
    assert reply.choices[0].message.content and reply.choices[0].finish_reason == "length"


def test_auto_tool_choice_answers(v1):
    reply = v1.chat.completions.create(
        model="tiny-chat", messages=HI, tools=[WEATHER], max_tokens=5, temperature=0
    )
    assert reply.choices[0].finish_reason in {"length", "stop", "tool_calls"}


def test_streamed_forced_tool_call(v1):
    chunks = list(
        v1.chat.completions.create(
            model="tiny-chat",
            messages=HI,
            tools=[WEATHER],
            tool_choice="required",
            max_tokens=150,
            temperature=0,
            stream=True,
        )
    )
    calls = [tc for c in chunks for tc in (c.choices[0].delta.tool_calls or [])]
    assert calls[0].function.name == "get_weather" and calls[0].index == 0
    assert all(c.index == 0 and c.function.name is None for c in calls[1:])
    json.loads("".join(c.function.arguments for c in calls))
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


@pytest.mark.parametrize("style", STYLES)
def test_completions_with_prompt_lists_and_n(app, style):
    client = client_for(app, style, "tiny-chat")
    reply = client.completions.create(
        model="tiny-chat", prompt=["one", "two"], n=2, max_tokens=3, temperature=0
    )
    assert reply.object == "text_completion"
    assert [c.index for c in reply.choices] == [0, 1, 2, 3]
    assert reply.choices[0].text == reply.choices[1].text
    assert reply.usage.completion_tokens == 12


def test_completion_defaults_to_16_tokens_and_streams_the_same_text(v1):
    whole = v1.completions.create(model="tiny-chat", prompt="Once", temperature=0)
    assert whole.usage.completion_tokens == 16
    chunks = list(
        v1.completions.create(
            model="tiny-chat",
            prompt="Once",
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(c.choices[0].text for c in chunks if c.choices) == whole.choices[0].text
    assert chunks[-1].usage.completion_tokens == 16


def test_completion_echo_suffix_stop_and_logprobs(v1):
    echoed = v1.completions.create(
        model="tiny-chat", prompt="abc", max_tokens=4, temperature=0, echo=True
    )
    plain = v1.completions.create(model="tiny-chat", prompt="abc", max_tokens=4, temperature=0)
    assert echoed.choices[0].text == "abc" + plain.choices[0].text
    with_logprobs = v1.completions.create(
        model="tiny-chat", prompt="abc", max_tokens=4, temperature=0, logprobs=2
    )
    lp = with_logprobs.choices[0].logprobs
    assert "".join(lp.tokens) == plain.choices[0].text
    assert lp.text_offset[0] == 0 and all(len(t) == 2 for t in lp.top_logprobs)
    stop = plain.choices[0].text[1:3]
    stopped = v1.completions.create(
        model="tiny-chat", prompt="abc", max_tokens=4, temperature=0, stop=stop
    )
    assert stopped.choices[0].text == plain.choices[0].text[: plain.choices[0].text.index(stop)]
    # The tiny model has no fill-in-the-middle tokens, so it cannot take a suffix.
    with pytest.raises(BadRequestError) as error:
        v1.completions.create(model="tiny-chat", prompt="abc", suffix="xyz", max_tokens=2)
    assert error.value.param == "suffix" and "fill-in-the-middle" in error.value.message


@pytest.mark.parametrize("style", STYLES)
def test_embeddings_base64_by_default_equal_float(app, style):
    client = client_for(app, style, "minilm")
    default = client.embeddings.create(model="minilm", input=["a cat", "a dog"])
    floats = client.embeddings.create(
        model="minilm", input=["a cat", "a dog"], encoding_format="float"
    )
    assert len(default.data) == 2 and len(default.data[0].embedding) == 384
    np.testing.assert_allclose(default.data[1].embedding, floats.data[1].embedding, rtol=1e-6)
    assert default.usage.prompt_tokens == floats.usage.prompt_tokens > 4


def test_raw_base64_is_little_endian_float32(http):
    body = {"model": "minilm", "input": "hello", "encoding_format": "base64"}
    data = http.post("/v1/embeddings", json=body).json()["data"][0]["embedding"]
    vector = np.frombuffer(base64.b64decode(data), dtype="<f4")
    assert vector.shape == (384,)
    assert abs(np.linalg.norm(vector) - 1) < 1e-4


def test_embedding_dimensions_truncate_and_renormalise(v1):
    full = np.array(
        v1.embeddings.create(model="minilm", input="hello", encoding_format="float")
        .data[0]
        .embedding
    )
    short = np.array(
        v1.embeddings.create(model="minilm", input="hello", dimensions=8).data[0].embedding
    )
    np.testing.assert_allclose(short, full[:8] / np.linalg.norm(full[:8]), rtol=1e-5)


def test_gguf_embeddings(v1):
    reply = v1.embeddings.create(model="tiny-embed", input="hello", encoding_format="float")
    assert len(reply.data[0].embedding) == 64
    assert reply.usage.prompt_tokens > 0


@pytest.mark.parametrize("style", STYLES)
def test_images_as_b64_json(app, style):
    client = client_for(app, style, "tiny-sd")
    result = client.images.generate(
        model="tiny-sd",
        prompt="a cat",
        n=2,
        size="32x48",
        response_format="b64_json",
        extra_body={"steps": 2, "seed": 5, "negative_prompt": "dog", "guidance_scale": 1.5},
    )
    assert len(result.data) == 2
    image = Image.open(io.BytesIO(base64.b64decode(result.data[0].b64_json)))
    assert image.format == "PNG" and image.size == (32, 48)


def test_images_by_url_are_served_by_localoip_and_seeded(v1, http):
    first = v1.images.generate(model="tiny-sd", prompt="sky", size="64x64", extra_body={"seed": 9})
    second = v1.images.generate(model="tiny-sd", prompt="sky", size="64x64", extra_body={"seed": 9})
    urls = [first.data[0].url, second.data[0].url]
    assert urls[0] != urls[1] and urls[0].startswith(str(v1.base_url).removesuffix("v1/"))
    pngs = [http.get(url) for url in urls]
    assert all(r.headers["content-type"] == "image/png" for r in pngs)
    assert pngs[0].content == pngs[1].content
    assert http.get(urls[0].replace(".png", "x.png")).status_code == 404


def test_models_list_and_retrieve(app, v1):
    models = {m.id: m for m in v1.models.list()}
    assert set(models) == {
        *(
            "tiny-chat",
            "slow-chat",
            "tiny-embed",
            "minilm",
            "tiny-sd",
            "tiny-rerank",
            "missing",
            "hub-offline",
        )
    }
    assert models["tiny-chat"].capabilities == ["chat", "completion"]
    assert models["missing"].state == "UNAVAILABLE" and "no such file" in models["missing"].reason
    assert v1.models.retrieve("minilm").capabilities == ["embed", "rerank"]
    assert models["tiny-rerank"].capabilities == ["rerank"]
    seldon = client_for(app, "seldon", "minilm")
    assert seldon.models.retrieve("tiny-sd").state == "READY"


def test_models_give_the_context_in_use_the_trained_one_the_quantization_and_the_size(v1, tiny_dir):
    models = {m.id: m for m in v1.models.list()}
    embed = models["tiny-embed"]  # n_ctx = 512 of a GGUF trained for 2048
    assert (embed.context_length, embed.max_model_len, embed.max_context_length) == (512, 512, 2048)
    assert embed.quantization == "F32"
    assert embed.file_size == (tiny_dir / "tiny.gguf").stat().st_size
    minilm = v1.models.retrieve("minilm")
    assert (minilm.context_length, minilm.max_context_length) == (256, 512)
    assert minilm.quantization == "float32" and minilm.file_size > 80_000_000
    sd = models["tiny-sd"]
    assert sd.context_length is None and sd.quantization == "float32"
    assert sd.file_size == sum(
        p.stat().st_size for p in (tiny_dir / "tiny-sd").rglob("*") if p.is_file()
    )


def test_a_model_that_did_not_load_gives_only_its_configured_context(v1):
    missing = v1.models.retrieve("missing")
    assert missing.context_length == 2048  # the n_ctx default; the file never said more
    assert missing.max_context_length is None and missing.file_size is None
    assert missing.quantization is None


def test_the_oip_index_and_metadata_give_the_same_facts_as_the_model_card(http):
    index = {m["name"]: m for m in http.post("/v2/repository/index", json={}).json()}
    card = http.get("/v1/models/tiny-embed").json()
    parameters = http.get("/v2/models/tiny-embed").json()["parameters"]
    fields = ("context_length", "max_model_len", "max_context_length", "quantization", "file_size")
    fields += ("vision",)
    for field in fields:
        assert index["tiny-embed"][field] == card[field] == parameters[field], field


def test_oip_and_openai_give_the_same_embeddings(http, v1):
    body = {
        "inputs": [{"name": "input", "shape": [2], "datatype": "BYTES", "data": ["red", "blue"]}]
    }
    oip = http.post("/v2/models/minilm/infer", json=body).json()["outputs"][0]
    openai_vectors = [
        d.embedding for d in v1.embeddings.create(model="minilm", input=["red", "blue"]).data
    ]
    np.testing.assert_allclose(
        np.array(oip["data"]).reshape(oip["shape"]), openai_vectors, rtol=1e-6
    )


def test_oip_and_openai_give_the_same_greedy_chat_text(http, v1):
    body = {
        "inputs": [
            {"name": "role", "shape": [2], "datatype": "BYTES", "data": ["system", "user"]},
            {"name": "content", "shape": [2], "datatype": "BYTES", "data": ["Be brief.", "hello"]},
        ],
        "parameters": {"max_tokens": 8, "temperature": 0},
    }
    oip = http.post("/v2/models/tiny-chat/infer", json=body).json()["outputs"][1]["data"][0]
    reply = v1.chat.completions.create(
        model="tiny-chat",
        max_tokens=8,
        temperature=0,
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello"}],
    )
    assert reply.choices[0].message.content == oip


def test_a_client_that_hangs_up_mid_stream_stops_the_generation(http, v1, caplog):
    caplog.set_level(logging.INFO, logger="localoip")
    body = {"model": "tiny-chat", "messages": HI, "max_tokens": 400, "stream": True}
    with http.stream("POST", "/v1/chat/completions", json=body) as response:
        for line in response.iter_lines():
            if '"content":"' in line and '"content":""' not in line:
                break
    reply = v1.chat.completions.create(model="tiny-chat", messages=HI, max_tokens=3)
    assert reply.choices[0].message.content
    assert "model 'tiny-chat': stream stopped early; the client went away" in caplog.text


def test_a_prompt_beyond_the_context_window_is_a_client_error(v1):
    client = v1
    with pytest.raises(BadRequestError) as error:
        client.chat.completions.create(
            model="tiny-chat", messages=[{"role": "user", "content": "x" * 3000}]
        )
    assert error.value.code == "context_length_exceeded" and error.value.param == "messages"


def test_each_turn_of_a_chat_reports_the_prompt_tokens_it_found_cached(v1):
    """Turn 2 re-sends turn 1 and its reply: the engine keeps that prefix in a slot and reads
    only the rest, and says so in `usage.prompt_tokens_details.cached_tokens`, streamed too."""
    question = [{"role": "user", "content": "Tell me about the sea in twenty words or so"}]
    first = v1.chat.completions.create(
        model="tiny-chat", messages=question, max_tokens=12, temperature=0
    )
    assert first.usage.prompt_tokens_details.cached_tokens < first.usage.prompt_tokens
    reply = {"role": "assistant", "content": first.choices[0].message.content}
    turn_2 = [*question, reply, {"role": "user", "content": "And about rivers?"}]
    chunks = list(
        v1.chat.completions.create(
            model="tiny-chat",
            messages=turn_2,
            max_tokens=12,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    usage = chunks[-1].usage
    assert usage.prompt_tokens > first.usage.prompt_tokens
    # at least the first turn's prompt was found in the cache, and the new message was read
    assert first.usage.prompt_tokens <= usage.prompt_tokens_details.cached_tokens
    assert usage.prompt_tokens_details.cached_tokens < usage.prompt_tokens
    again = v1.chat.completions.create(
        model="tiny-chat", messages=turn_2, max_tokens=12, temperature=0
    )
    assert again.usage.prompt_tokens_details.cached_tokens == again.usage.prompt_tokens - 1
    assert again.choices[0].message.content == "".join(
        c.choices[0].delta.content or "" for c in chunks if c.choices
    )
