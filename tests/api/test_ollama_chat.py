"""Ollama's /api/chat and /api/generate through its official Python client, unchanged, on the
in-process app: whole and streamed, reasoning as `thinking`, calls as `tool_calls`, `format`,
`think`, `raw` and the metrics of the last object. The same greedy answer as the other
protocols' is test_surfaces_agree.py's."""

from __future__ import annotations

import json

import ollama
import pytest
from support.chats import WEATHER
from support.family import ANSWER, ARGUMENTS, REASONING

ASK = [{"role": "user", "content": "What is the weather in Paris?"}]
GREEDY = {"temperature": 0, "seed": 7}
METRICS = (
    "total_duration",
    "load_duration",
    "prompt_eval_count",
    "prompt_eval_duration",
    "eval_count",
    "eval_duration",
)


@pytest.fixture(scope="module")
def client(ollama_app) -> ollama.Client:
    return ollama_app.ollama()


def test_a_chat_answers_whole_with_its_reasoning_as_thinking_and_the_metrics(client):
    reply = client.chat(model="qwen3-thinking", messages=ASK, options=GREEDY)
    assert (reply.message.content, reply.message.thinking) == (ANSWER, REASONING)
    assert (reply.done, reply.done_reason, reply.model) == (True, "stop", "qwen3-thinking")
    assert all(isinstance(reply[name], int) for name in METRICS)
    assert reply.prompt_eval_count > 0 and reply.eval_count > 0
    assert reply.total_duration >= reply.prompt_eval_duration + reply.eval_duration


def test_a_streamed_chat_is_pieces_then_one_done_object(client):
    pieces = list(client.chat(model="qwen3-thinking", messages=ASK, stream=True, options=GREEDY))
    *body, last = pieces
    assert not any(p.done for p in body) and last.done and last.done_reason == "stop"
    assert "".join(p.message.content for p in pieces) == ANSWER
    assert "".join(p.message.thinking or "" for p in pieces) == REASONING
    assert all(isinstance(last[name], int) for name in METRICS)


def test_think_false_asks_the_template_to_skip_the_reasoning(ollama_app):
    with ollama_app.client() as http:
        on = http.post(
            "/api/chat",
            json={"model": "qwen3-thinking", "messages": ASK, "stream": False, "think": True},
        ).json()
        off = http.post(
            "/api/chat",
            json={"model": "qwen3-thinking", "messages": ASK, "stream": False, "think": False},
        ).json()
    # Qwen3's template reads enable_thinking: off, it writes an empty think block itself,
    # which makes the prompt longer; the scripted reply is the same text either way.
    assert off["prompt_eval_count"] > on["prompt_eval_count"]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_a_tool_call_comes_back_as_ollama_tool_calls_and_the_result_goes_back(client, stream):
    reply = client.chat(
        model="qwen2.5-turns", messages=ASK, tools=[WEATHER], stream=stream, options=GREEDY
    )
    pieces = list(reply) if stream else [reply]
    calls = [c for p in pieces for c in p.message.tool_calls or []]
    assert [(c.function.name, dict(c.function.arguments)) for c in calls] == [
        ("get_weather", json.loads(ARGUMENTS))
    ]
    assert pieces[-1].done_reason == "stop"
    history = [
        *ASK,
        {"role": "assistant", "content": "", "tool_calls": [c.model_dump() for c in calls]},
        {"role": "tool", "tool_name": "get_weather", "content": '{"weather": "sunny"}'},
    ]
    answer = client.chat(model="qwen2.5-turns", messages=history, tools=[WEATHER], options=GREEDY)
    assert (answer.message.content, answer.message.tool_calls) == (ANSWER, None)


def test_format_json_schema_makes_the_reply_follow_it(client):
    schema = {
        "type": "object",
        "properties": {"colour": {"enum": ["red", "green", "blue"]}},
        "required": ["colour"],
    }
    reply = client.chat(
        model="smollm2",
        messages=[{"role": "user", "content": "Pick a colour, as JSON."}],
        format=schema,
        options={**GREEDY, "num_predict": 40},
    )
    assert json.loads(reply.message.content)["colour"] in ("red", "green", "blue")


def test_format_json_gives_a_json_object(client):
    reply = client.generate(
        model="smollm2",
        prompt="Give a JSON object with a name.",
        format="json",
        options={**GREEDY, "num_predict": 60},
    )
    if reply.done_reason == "stop":
        assert isinstance(json.loads(reply.response), dict)
    else:
        assert reply.response.lstrip().startswith("{")


def test_generate_goes_through_the_chat_template_with_the_system_prompt(client):
    plain = client.generate(model="qwen3-thinking", prompt="Weather?", options=GREEDY)
    assert (plain.response, plain.thinking, plain.done) == (ANSWER, REASONING, True)
    framed = client.generate(
        model="qwen3-thinking", prompt="Weather?", system="Be brief.", options=GREEDY
    )
    assert framed.prompt_eval_count > plain.prompt_eval_count


def test_raw_generate_completes_the_prompt_as_it_is(ollama_app, client):
    raw = client.generate(
        model="tiny-chat", prompt="Once upon", raw=True, options={**GREEDY, "num_predict": 5}
    )
    completion = ollama_app.openai().completions.create(
        model="tiny-chat", prompt="Once upon", max_tokens=5, temperature=0, seed=7
    )
    assert raw.response == completion.choices[0].text
    assert (raw.eval_count, raw.done_reason) == (5, "length")


def test_a_streamed_generate_adds_up_to_the_whole_one(client):
    options = {**GREEDY, "num_predict": 12}
    whole = client.generate(model="smollm2", prompt="Hello", options=options)
    pieces = list(client.generate(model="smollm2", prompt="Hello", options=options, stream=True))
    assert "".join(p.response for p in pieces) == whole.response
    assert pieces[-1].eval_count == whole.eval_count


def test_stop_and_num_predict_are_applied(client):
    options = {**GREEDY, "num_predict": 3}
    short = client.generate(model="tiny-chat", prompt="abc", raw=True, options=options)
    assert (short.eval_count, short.done_reason) == (3, "length")
    longer = client.generate(
        model="tiny-chat", prompt="abc", raw=True, options={**GREEDY, "num_predict": 8}
    )
    stop = longer.response[2:4]
    cut = client.generate(
        model="tiny-chat",
        prompt="abc",
        raw=True,
        options={**GREEDY, "num_predict": 8, "stop": [stop]},
    )
    assert stop not in cut.response and longer.response.startswith(cut.response)


def test_logprobs_come_with_each_generated_token_and_its_alternatives(client):
    options = {**GREEDY, "num_predict": 4}
    reply = client.chat(
        model="tiny-chat", messages=ASK, logprobs=True, top_logprobs=2, options=options
    )
    assert len(reply.logprobs) == reply.eval_count == 4
    assert all(len(lp.top_logprobs) == 2 and lp.logprob <= 0 for lp in reply.logprobs)
    assert "".join(lp.token for lp in reply.logprobs) == reply.message.content
    pieces = list(
        client.generate(
            model="tiny-chat", prompt="abc", raw=True, logprobs=True, stream=True, options=options
        )
    )
    assert len([lp for p in pieces for lp in p.logprobs or []]) == pieces[-1].eval_count == 4
    assert client.chat(model="tiny-chat", messages=ASK, options=options).logprobs is None


def test_num_ctx_within_the_context_in_use_is_served_as_it_is(client, ollama_app):
    options = {**GREEDY, "num_predict": 2, "num_ctx": 512}
    reply = client.chat(model="tiny-chat", messages=ASK, options=options)
    assert reply.done and "num_ctx 512" not in ollama_app.logs()


def test_a_larger_num_ctx_is_served_within_the_context_in_use_and_logged(client, ollama_app):
    options = {**GREEDY, "num_predict": 2, "num_ctx": 131072}
    reply = client.chat(model="tiny-chat", messages=ASK, options=options)
    assert reply.done  # as Ollama caps num_ctx at what the model has, never a 500
    assert "num_ctx 131072 is more than model 'tiny-chat''s context, 2048" in ollama_app.logs()


def test_a_prompt_longer_than_the_context_is_a_400(ollama_app):
    body = {"model": "tiny-chat", "prompt": "word " * 5000, "options": {"num_ctx": 8192}}
    with ollama_app.client() as http:
        answer = http.post("/api/generate", json=body)
    assert answer.status_code == 400 and "context" in answer.json()["error"]
