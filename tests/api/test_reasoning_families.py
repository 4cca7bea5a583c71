"""Reasoning models of each family (scripted, support/scripted.py) behind every surface, in
process: the reasoning reaches chat completions as `reasoning_content` (whole and streamed,
with the openai SDK), the Responses API as a reasoning item with its events, OIP as its
`reasoning` tensor and the playground as its fold, never as content."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from support.chats import WEATHER
from support.configs import scripted_chats
from support.families import FAMILIES
from support.family import ANSWER, ARGUMENTS, CALL_REASONING, REASONING
from support.inprocess import InProcessApp
from support.playground import PAGE, export, frames, job_of

THINKING = [f for f in FAMILIES.values() if f.thinking]
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]
QWEN3 = "qwen3-thinking"
RESPONSES_TOOL = {"type": "function", **WEATHER["function"]}


@pytest.fixture(scope="module")
def app(apps, scripted_dir: Path) -> Iterator[InProcessApp]:
    """Every family's thinking model, and Qwen3's calling one, loaded as tests ask."""
    names = [f"{f.name}-thinking" for f in THINKING] + ["qwen3-calling"]
    config = (
        '[server]\nload = "on-demand"\nmax_loaded_models = 3\n'
        'store_path = "store.db"\n\n' + scripted_chats(scripted_dir, names)
    )
    with apps.shared(config) as running:
        yield running


@pytest.mark.parametrize("family", THINKING, ids=[f.name for f in THINKING])
def test_a_chat_has_the_reasoning_apart_whole_and_streamed(app, family):
    v1, model = app.openai(), f"{family.name}-thinking"
    reply = v1.chat.completions.create(model=model, messages=ASK, temperature=0)
    message = reply.choices[0].message
    assert (message.model_extra["reasoning_content"], message.content) == (REASONING, ANSWER)
    reasoning_tokens = reply.usage.completion_tokens_details.reasoning_tokens
    assert 0 < reasoning_tokens < reply.usage.completion_tokens
    chunks = list(
        v1.chat.completions.create(
            model=model,
            messages=ASK,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    thought = [(d.model_extra or {}).get("reasoning_content") or "" for d in deltas]
    said = [d.content or "" for d in deltas]
    assert ("".join(thought), "".join(said)) == (REASONING, ANSWER)
    last_thought = max(i for i, t in enumerate(thought) if t)
    assert not any(said[: last_thought + 1])  # the reasoning comes first, whole
    assert chunks[-1].usage.completion_tokens_details.reasoning_tokens == reasoning_tokens


def test_a_response_has_a_reasoning_item_before_the_message_and_keeps_it(app):
    v1 = app.openai()
    response = v1.responses.create(model=QWEN3, input=ASK[0]["content"], temperature=0)
    assert [item.type for item in response.output] == ["reasoning", "message"]
    reasoning = response.output[0]
    assert reasoning.id.startswith("rs_") and reasoning.content[0].text == REASONING
    assert response.output_text == ANSWER
    assert response.usage.output_tokens_details.reasoning_tokens > 0
    kept = v1.responses.retrieve(response.id)
    assert kept.output[0].content[0].text == REASONING


def test_a_streamed_response_sends_the_reasoning_events_first(app):
    events = list(
        app.openai().responses.create(model=QWEN3, input="Weather?", temperature=0, stream=True)
    )
    kinds = [e.type for e in events]
    assert kinds.index("response.reasoning_text.done") < kinds.index("response.output_text.delta")
    text = "".join(e.delta for e in events if e.type == "response.reasoning_text.delta")
    done = events[-1].response
    assert (text, done.output[0].content[0].text, done.output_text) == (
        REASONING,
        REASONING,
        ANSWER,
    )


def test_a_call_after_reasoning_is_a_reasoning_item_then_a_function_call(app):
    response = app.openai().responses.create(
        model="qwen3-calling", input="Weather?", tools=[RESPONSES_TOOL], temperature=0
    )
    assert [item.type for item in response.output] == ["reasoning", "function_call"]
    call = response.output[1]
    assert response.output[0].content[0].text == CALL_REASONING
    assert json.loads(call.arguments) == json.loads(ARGUMENTS)


def test_oip_infer_gives_the_reasoning_as_its_own_tensor(app):
    body = {
        "inputs": [
            {"name": "role", "shape": [1], "datatype": "BYTES", "data": ["user"]},
            {"name": "content", "shape": [1], "datatype": "BYTES", "data": ["Weather?"]},
        ],
        "parameters": {"temperature": 0},
    }
    with app.client() as http:
        answer = http.post(f"/v2/models/{QWEN3}/infer", json=body)
    assert answer.status_code == 200, answer.text
    outputs = {o["name"]: o["data"] for o in answer.json()["outputs"]}
    assert outputs == {"role": ["assistant"], "content": [ANSWER], "reasoning": [REASONING]}


def test_the_playground_streams_the_reasoning_into_its_fold_and_its_exports_keep_it(app):
    with app.client() as http:
        answer = http.post(
            "/ui/chat",
            data={"model": QWEN3, "message": "Weather?", "temperature": "0"},
            headers=PAGE,
        )
        assert answer.status_code == 200, answer.text
        events = list(frames(http, job_of(answer.text)))
        streamed = "".join(e["data"] for e in events if e.get("event") == "reasoning")
        assert streamed == REASONING
        done = events[-1]["data"]
        fold = re.search(r'<details class="reasoning">\s*<summary>(.*?)</summary>', done)
        assert fold[1].startswith("Reasoning · ") and " tokens" in fold[1]
        cid = re.search(r'/ui/chat/([^/"]+)/regenerate/', done)[1]
        (reply,) = [m for m in export(http, cid)["messages"] if m["role"] == "assistant"]
        markdown = http.get(f"/ui/conversations/{cid}/export.md")
        imported = http.post(
            "/ui/conversations/import",
            data={"data": markdown.text, "filename": "chat.md"},
            headers=PAGE,
        )
        copy = imported.headers["hx-redirect"].removeprefix("/?c=")
        (again,) = [m for m in export(http, copy)["messages"] if m["role"] == "assistant"]
    assert (reply["content"], reply["meta"]["reasoning"]) == (ANSWER, REASONING)
    n = reply["meta"]["reasoning_tokens"]
    assert n > 0
    # The Markdown export folds the reasoning before the answer, as GitHub shows <details>.
    assert markdown.text.endswith(
        f"## Assistant ({QWEN3})\n\n<details><summary>Reasoning ({n} tokens)</summary>\n\n"
        f"{REASONING}\n\n</details>\n\n{ANSWER}\n"
    )
    # and reads back as the reply's reasoning
    assert (again["content"], again["meta"]["reasoning"]) == (ANSWER, REASONING)
    assert again["meta"]["reasoning_tokens"] == n


def test_reasoning_given_back_reaches_a_template_that_renders_it(app):
    """Qwen3's template renders the reasoning of the turns after the last user message (a
    tool-call loop): given back, as reasoning_content or as a reasoning item, it adds to the
    prompt."""
    v1 = app.openai()
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather"}}
    call["function"]["arguments"] = ARGUMENTS
    turn = {"role": "assistant", "content": "", "tool_calls": [call]}
    result = {"role": "tool", "tool_call_id": "call_1", "content": '{"weather": "sunny"}'}

    def prompt_tokens(*history: dict) -> int:
        reply = v1.chat.completions.create(
            model="qwen3-calling", messages=[*ASK, *history], tools=[WEATHER], max_tokens=1
        )
        return reply.usage.prompt_tokens

    plain = prompt_tokens(turn, result)
    assert prompt_tokens({**turn, "reasoning_content": CALL_REASONING}, result) > plain
    items = [
        {"role": "user", "content": ASK[0]["content"]},
        {
            "type": "reasoning",
            "summary": [],
            "content": [{"type": "reasoning_text", "text": CALL_REASONING}],
        },
        {
            "type": "function_call",
            "call_id": "call_1",
            "name": "get_weather",
            "arguments": ARGUMENTS,
        },
        {"type": "function_call_output", "call_id": "call_1", "output": '{"weather": "sunny"}'},
    ]
    count = v1.responses.input_tokens.count
    given = count(model="qwen3-calling", input=items, tools=[RESPONSES_TOOL]).input_tokens
    left = count(model="qwen3-calling", input=[items[0], *items[2:]], tools=[RESPONSES_TOOL])
    assert given > left.input_tokens


def _first_token_counts(app: InProcessApp, model: str) -> float:
    with app.client() as http:
        text = http.get("/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name = sample.name == "localoip_time_to_first_token_seconds_count"
            if name and sample.labels.get("model") == model:
                return sample.value
    return 0.0


def test_a_reply_cut_inside_its_reasoning_still_has_a_time_to_first_token(app):
    """The first token is the reasoning's when a model reasons first: a reply cut by
    max_tokens before any answer is still timed."""
    before = _first_token_counts(app, QWEN3)
    reply = app.openai().chat.completions.create(
        model=QWEN3, messages=ASK, temperature=0, max_tokens=2, stream=True
    )
    chunks = list(reply)
    said = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert said == "" and chunks[-1].choices[0].finish_reason == "length"
    assert _first_token_counts(app, QWEN3) == before + 1
