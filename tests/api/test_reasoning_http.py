"""Reasoning on every surface, over HTTP, in process: the controls are taken on each protocol,
and a reply without reasoning says so the way each protocol does (no `reasoning_content`, no
reasoning item, no `reasoning` tensor, zero reasoning tokens). Reasoning given back (a chat's
`reasoning_content`, a Responses reasoning item) is taken, and reaches the prompt only as the
model's template renders it: the tiny model's template does not."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from openai import OpenAI
from support.inprocess import InProcessApp

HI = [{"role": "user", "content": "Hello there"}]
CONTROLS = {"chat_template_kwargs": {"enable_thinking": False}, "max_reasoning_tokens": 16}
SHORT = {"max_tokens": 4, "temperature": 0}


@pytest.fixture(scope="module")
def client(store_app: InProcessApp) -> OpenAI:
    return store_app.openai()


@pytest.fixture
def oip(store_app: InProcessApp) -> Iterator[httpx.Client]:
    with store_app.client() as c:
        yield c


def test_a_chat_takes_every_control_and_without_reasoning_has_no_reasoning_content(client):
    reply = client.chat.completions.create(
        model="tiny-chat",
        messages=HI,
        reasoning_effort="none",
        parallel_tool_calls=False,
        extra_body=CONTROLS,
        **SHORT,
    )
    plain = client.chat.completions.create(model="tiny-chat", messages=HI, **SHORT)
    message = reply.choices[0].message
    assert message.content == plain.choices[0].message.content
    assert (message.model_extra or {}).get("reasoning_content") is None
    assert reply.usage.completion_tokens_details.reasoning_tokens == 0


def test_a_streamed_chat_without_reasoning_sends_no_reasoning_content(client):
    chunks = client.chat.completions.create(
        model="tiny-chat",
        messages=HI,
        stream=True,
        stream_options={"include_usage": True},
        reasoning_effort="high",
        **SHORT,
    )
    chunks = list(chunks)
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert all((d.model_extra or {}).get("reasoning_content") is None for d in deltas)
    assert chunks[-1].usage.completion_tokens_details.reasoning_tokens == 0


def test_a_response_echoes_its_reasoning_settings_and_counts_no_reasoning(client):
    response = client.responses.create(
        model="tiny-chat",
        input="Hello there",
        reasoning={"effort": "low", "summary": "auto"},
        parallel_tool_calls=False,
        extra_body=CONTROLS,
        max_output_tokens=4,
        temperature=0,
    )
    assert (response.reasoning.effort, response.reasoning.summary) == ("low", "auto")
    assert response.parallel_tool_calls is False
    assert [item.type for item in response.output] == ["message"]
    assert response.usage.output_tokens_details.reasoning_tokens == 0


def test_a_reasoning_item_given_back_is_kept_and_reaches_only_templates_that_render_it(client):
    thought = {
        "type": "reasoning",
        "id": "rs_earlier",
        "summary": [{"type": "summary_text", "text": "Greeted."}],
        "content": [{"type": "reasoning_text", "text": "The user says hello. " * 20}],
    }
    turns = [
        {"role": "user", "content": "Hello there"},
        thought,
        {"role": "assistant", "content": "Hi!"},
        {"role": "user", "content": "How are you?"},
    ]
    without = [t for t in turns if t is not thought]
    count = client.responses.input_tokens.count
    assert count(model="tiny-chat", input=turns).input_tokens == (
        count(model="tiny-chat", input=without).input_tokens
    )
    response = client.responses.create(
        model="tiny-chat", input=turns, max_output_tokens=4, temperature=0
    )
    items = client.responses.input_items.list(response.id, order="asc").data
    kept = [i for i in items if i.type == "reasoning"]
    assert [(i.id, i.content[0].text, i.summary[0].text) for i in kept] == [
        ("rs_earlier", thought["content"][0]["text"], "Greeted.")
    ]


def test_oip_chat_takes_the_controls_and_without_reasoning_has_no_reasoning_tensor(oip):
    body = {
        "inputs": [
            {"name": "role", "shape": [1], "datatype": "BYTES", "data": ["user"]},
            {"name": "content", "shape": [1], "datatype": "BYTES", "data": ["hello"]},
        ],
        "parameters": {"reasoning_effort": "minimal", **CONTROLS, "max_tokens": 4},
    }
    answer = oip.post("/v2/models/tiny-chat/infer", json=body)
    assert answer.status_code == 200, answer.text
    assert [o["name"] for o in answer.json()["outputs"]] == ["role", "content"]
    metadata = oip.get("/v2/models/tiny-chat").json()
    (reasoning,) = [o for o in metadata["outputs"] if o["name"] == "reasoning"]
    assert reasoning["parameters"]["optional"] is True


def test_reasoning_content_sent_back_is_taken_and_the_tiny_template_leaves_it_out(client):
    earlier = {"role": "assistant", "content": "Hi!"}
    turns = [HI[0], earlier, {"role": "user", "content": "How are you?"}]
    thought = [HI[0], {**earlier, "reasoning_content": "They greet me."}, turns[2]]
    plain = client.chat.completions.create(model="tiny-chat", messages=turns, **SHORT)
    given = client.chat.completions.create(model="tiny-chat", messages=thought, **SHORT)
    assert given.usage.prompt_tokens == plain.usage.prompt_tokens
    assert given.choices[0].message.content == plain.choices[0].message.content
