"""Every family's example models (support/scripted.py) behind the Responses API, in process,
through the openai SDK: the reasoning is a reasoning item before the message or the calls, a
call is a function_call item with the script's name and arguments, and the streamed events add
up to the same items, the reasoning's first."""

from __future__ import annotations

import json

import pytest
from support.chats import WEATHER
from support.family import Family
from support.inprocess import InProcessApp
from support.scripted import CASES, IDS, parts_of

ASK = "What is the weather in Paris?"
TOOL = {"type": "function", **WEATHER["function"]}

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
    tools = {"tools": [TOOL]} if kind == "calling" else {}
    return app.openai().responses.create(
        model=f"{family.name}-{kind}", input=ASK, temperature=0, **tools, **options
    )


# Both ways of one model run one after the other: models load on demand, a few at a time.
@pytest.mark.parametrize(
    ("family", "kind", "stream"),
    [(f, kind, stream) for f, kind in CASES for stream in (False, True)],
    ids=[f"{i}-{way}" for i in IDS for way in ("whole", "streamed")],
)
def test_a_response_gives_the_reasoning_item_first_then_the_message_or_calls(
    scripted_app, family, kind, stream
):
    """Whole, the output items and usage; streamed, the events add up to the same items, the
    reasoning's done before any answer or arguments, and the completed response holds them."""
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
