"""Scripted models of each family (support/scripted.py) behind the server, in process: the
reply that reaches a client is the family's script.

The reply is read in the family's format: its reasoning never shows in `content` (the
runtime's TextResult.reasoning holds it, tests/unit/test_scripted_models.py), and a call
to an offered tool comes back as `tool_calls`, whatever form the family writes it in.
"""

from __future__ import annotations

import json

import pytest
from support.chats import WEATHER
from support.family import ANSWER, ARGUMENTS
from support.inprocess import InProcessApp
from support.scripted import CASES, IDS, SPLIT_CASES, SPLITS, Parts, parts_of

ASK = [{"role": "user", "content": "What is the weather in Paris?"}]


def reply_of(app: InProcessApp, model: str, kind: str, stream: bool) -> Parts:
    """The chat reply's reasoning_content, content and tool calls (name, arguments), streamed
    or not; get_weather is offered to a model whose example reply calls it."""
    v1 = app.openai()
    tools = {"tools": [WEATHER]} if kind == "calling" else {}
    if not stream:
        reply = v1.chat.completions.create(model=model, messages=ASK, temperature=0, **tools)
        message = reply.choices[0].message
        calls = [
            (c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls or []
        ]
        reasoning = (message.model_extra or {}).get("reasoning_content") or ""
        return reasoning, message.content or "", calls
    chunks = v1.chat.completions.create(
        model=model, messages=ASK, temperature=0, stream=True, **tools
    )
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    called: dict[int, list[str]] = {}
    for piece in (p for d in deltas for p in d.tool_calls or []):
        got = called.setdefault(piece.index, ["", ""])
        got[0] += (piece.function.name or "") if piece.function else ""
        got[1] += (piece.function.arguments or "") if piece.function else ""
    calls = [(name, json.loads(args)) for name, args in (called[i] for i in sorted(called))]
    reasoning = "".join((d.model_extra or {}).get("reasoning_content") or "" for d in deltas)
    return reasoning, "".join(d.content or "" for d in deltas), calls


# Both ways of one model run one after the other: models load on demand, a few at a time.
@pytest.mark.parametrize(
    ("family", "kind", "stream"),
    [(f, kind, stream) for f, kind in CASES for stream in (False, True)],
    ids=[f"{i}-{way}" for i in IDS for way in ("whole", "streamed")],
)
def test_a_chat_returns_the_answer_as_content_and_the_calls_as_tool_calls(
    scripted_app, family, kind, stream
):
    got = reply_of(scripted_app, f"{family.name}-{kind}", kind, stream)
    assert got == parts_of(family, kind)


@pytest.mark.parametrize(
    ("family", "kind", "split"),
    [(f, kind, split) for f, kind in SPLIT_CASES for split in SPLITS],
    ids=[f"{f.name}-{kind}-{split}" for f, kind in SPLIT_CASES for split in SPLITS],
)
def test_a_reply_split_at_every_byte_reads_as_the_script_streamed_or_not(
    scripted_app, family, kind, split
):
    """An example with markers written as text, in its smallest pieces
    (support.scripted.build_splits), streams a token of two bytes a chunk: between the even
    and the odd cut, each marker arrives split at each of its bytes, and the stream still adds
    up to the whole reply and to the script."""
    model = f"{family.name}-{kind}-split-{split}"
    whole = reply_of(scripted_app, model, kind, stream=False)
    assert whole == parts_of(family, kind)
    assert reply_of(scripted_app, model, kind, stream=True) == whole


def test_a_hermes_call_with_tools_offered_is_a_tool_call(scripted_app):
    reply = scripted_app.openai().chat.completions.create(
        model="qwen2.5-calling", messages=ASK, tools=[WEATHER], temperature=0
    )
    (call,) = reply.choices[0].message.tool_calls
    assert (call.function.name, json.loads(call.function.arguments)) == (
        "get_weather",
        json.loads(ARGUMENTS),
    )
    assert reply.choices[0].finish_reason == "tool_calls"


def test_after_the_tool_result_the_scripted_model_answers(scripted_app):
    v1 = scripted_app.openai()
    first = v1.chat.completions.create(
        model="qwen2.5-turns", messages=ASK, tools=[WEATHER], temperature=0
    )
    (call,) = first.choices[0].message.tool_calls
    history = [
        *ASK,
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": '{"weather": "sunny"}'},
    ]
    second = v1.chat.completions.create(
        model="qwen2.5-turns", messages=history, tools=[WEATHER], temperature=0
    )
    assert (second.choices[0].message.content, second.choices[0].finish_reason) == (
        ANSWER,
        "stop",
    )
