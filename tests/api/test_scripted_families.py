"""Scripted models of each family (support/scripted.py) behind the server, in process: the
reply that reaches a client is the family's script.

The reply is read in the family's format: its reasoning never shows in `content` (the
runtime's TextResult.reasoning holds it, tests/unit/test_scripted_models.py), and a call
to an offered tool comes back as `tool_calls`, whatever form the family writes it in.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.chats import WEATHER
from support.configs import scripted_chats
from support.families import FAMILIES, QWEN25
from support.family import ANSWER, ARGUMENTS
from support.inprocess import InProcessApp
from support.scripted import EXAMPLES, Turn, build_scripted_gguf

CASES = [(f, kind) for f in FAMILIES.values() for kind in EXAMPLES if getattr(f, kind)]
IDS = [f"{f.name}-{kind}" for f, kind in CASES]
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]


@pytest.fixture(scope="module")
def scripted_app(apps, scripted_dir: Path, tmp_path_factory) -> Iterator[InProcessApp]:
    """Every family's example models, and a Qwen2.5 model that calls get_weather, then
    answers once the tool result says "sunny"."""
    folder = tmp_path_factory.mktemp("turns")
    build_scripted_gguf(
        folder / "qwen2.5-turns.gguf",
        family=QWEN25,
        script=[str(QWEN25.calling), Turn(ANSWER, cue="sunny")],
    )
    # One runner process a model: a few at a time, loaded as tests ask for them.
    config = (
        '[server]\nload = "on-demand"\nmax_loaded_models = 4\n\n'
        + scripted_chats(scripted_dir, IDS)
        + scripted_chats(folder, ["qwen2.5-turns"])
    )
    with apps.shared(config) as app:
        yield app


def reply_of(app: InProcessApp, model: str, kind: str, stream: bool) -> tuple[str, list]:
    """The chat reply's content and its tool calls (name, arguments), streamed or not;
    get_weather is offered to a model whose example reply calls it."""
    v1 = app.openai()
    tools = {"tools": [WEATHER]} if kind == "calling" else {}
    if not stream:
        reply = v1.chat.completions.create(model=model, messages=ASK, temperature=0, **tools)
        message = reply.choices[0].message
        calls = [
            (c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls or []
        ]
        return message.content or "", calls
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
    return "".join(d.content or "" for d in deltas), calls


# Both ways of one model run one after the other: models load on demand, a few at a time.
@pytest.mark.parametrize(
    ("family", "kind", "stream"),
    [(f, kind, stream) for f, kind in CASES for stream in (False, True)],
    ids=[f"{i}-{way}" for i in IDS for way in ("whole", "streamed")],
)
def test_a_chat_returns_the_answer_as_content_and_the_calls_as_tool_calls(
    scripted_app, family, kind, stream
):
    content, calls = reply_of(scripted_app, f"{family.name}-{kind}", kind, stream)
    if kind == "calling":
        assert (content, calls) == ("", [("get_weather", json.loads(ARGUMENTS))])
    else:
        assert (content, calls) == (ANSWER, [])


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
