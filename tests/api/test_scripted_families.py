"""Scripted models of each family (support/scripted.py) behind the server, in process: the
reply that reaches a client, through chat completions and the Responses API, whole and
streamed, is the family's script.

The reply is read in the family's format: its reasoning never shows in `content` (the
runtime's TextResult.reasoning holds it, tests/unit/test_scripted_models.py) but comes as
`reasoning_content` or a reasoning item before the answer, and a call to an offered tool comes
back as `tool_calls` or function_call items, whatever form the family writes it in.
"""

from __future__ import annotations

import json

import pytest
from support.chats import WEATHER
from support.family import ANSWER, ARGUMENTS, Family
from support.inprocess import InProcessApp
from support.scripted import CASES, IDS, SPLIT_CASES, SPLITS, Parts, parts_of

ASK = [{"role": "user", "content": "What is the weather in Paris?"}]
TOOL = {"type": "function", **WEATHER["function"]}  # as the Responses API takes it


@pytest.fixture(scope="module", params=CASES, ids=IDS)
def example(request: pytest.FixtureRequest) -> tuple[Family, str]:
    """A family's example (family, kind). Module-scoped, so pytest runs every test of one
    example before the next: its model loads once (models load on demand, a few at a time)."""
    return request.param


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


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_a_chat_returns_the_reasoning_the_answer_and_the_calls_apart(scripted_app, example, stream):
    family, kind = example
    got = reply_of(scripted_app, f"{family.name}-{kind}", kind, stream)
    assert got == parts_of(family, kind)


# An output item as compared here: ("reasoning", text), ("message", text) or
# ("function_call", name, arguments).
Item = tuple


def expected_items(family: Family, kind: str) -> list[Item]:
    """The output the family's example gives: its reasoning, then its answer or its calls."""
    reasoning, answer, calls = parts_of(family, kind)
    items: list[Item] = [("reasoning", reasoning)] if reasoning else []
    if answer or not calls:
        items.append(("message", answer))
    return items + [("function_call", name, arguments) for name, arguments in calls]


def items_of(output: list) -> list[Item]:
    """A response's output items, as compared here."""
    items: list[Item] = []
    for item in output:
        if item.type == "reasoning":
            items.append(("reasoning", "".join(c.text for c in item.content or [])))
        elif item.type == "message":
            items.append(("message", "".join(c.text for c in item.content)))
        else:
            items.append((item.type, item.name, json.loads(item.arguments)))
    return items


def folded(events: list) -> list[Item]:
    """The output items the stream's events build: each item's kind from its
    output_item.added, its text or arguments from its deltas."""
    kinds: dict[int, list] = {}
    for e in events:
        if e.type == "response.output_item.added":
            name = [e.item.name] if e.item.type == "function_call" else []
            kinds[e.output_index] = [e.item.type, *name, ""]
        elif e.type in (
            "response.reasoning_text.delta",
            "response.output_text.delta",
            "response.function_call_arguments.delta",
        ):
            kinds[e.output_index][-1] += e.delta
    items = [tuple(kinds[i]) for i in sorted(kinds)]
    return [(*i[:-1], json.loads(i[-1])) if i[0] == "function_call" else i for i in items]


def create(app: InProcessApp, family: Family, kind: str, **options):
    """The example's response to ASK, get_weather offered to a model whose example calls it."""
    tools = {"tools": [TOOL]} if kind == "calling" else {}
    return app.openai().responses.create(
        model=f"{family.name}-{kind}", input=ASK[0]["content"], temperature=0, **tools, **options
    )


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_a_response_gives_the_reasoning_item_first_then_the_message_or_calls(
    scripted_app, example, stream
):
    """Whole, the output items and usage; streamed, the events add up to the same items, the
    reasoning's done before any answer or arguments, and the completed response holds them."""
    family, kind = example
    expected = expected_items(family, kind)
    reasoning, answer, _ = parts_of(family, kind)
    if stream:
        events = list(create(scripted_app, family, kind, stream=True))
        assert folded(events) == expected
        kinds = [e.type for e in events]
        if reasoning:
            answered = [
                i
                for i, k in enumerate(kinds)
                if k in ("response.output_text.delta", "response.function_call_arguments.delta")
            ]
            assert kinds.index("response.reasoning_text.done") < min(answered)
        assert events[-1].type == "response.completed"
        response = events[-1].response
    else:
        response = create(scripted_app, family, kind)
    assert items_of(response.output) == expected
    assert response.output_text == answer
    reasoning_tokens = response.usage.output_tokens_details.reasoning_tokens
    assert (reasoning_tokens > 0) == bool(reasoning)
    assert reasoning_tokens < response.usage.output_tokens


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
