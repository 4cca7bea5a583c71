"""Tool calls in each model family's own form: Hermes/Qwen, Llama 3.x and Mistral.

The reader is tested on the text those models write, fed whole and one character at a time;
the runtime is tested on tiny GGUFs that carry each family's chat template.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import jsonschema
import pytest
from localoip.runtimes.capabilities import ChatMessage, ChatRequest, Sampling, Tool, ToolCall
from localoip.runtimes.llamacpp import tool_calls
from localoip.runtimes.llamacpp.runtime import LlamaCppRuntime
from localoip.runtimes.options import LlamaCppOptions
from support.chat_templates import LLAMA31, MISTRAL_V03, QWEN25
from support.tiny_models import CHATML_TEMPLATE, build_tiny_gguf

WEATHER = Tool(
    "get_weather",
    "Current weather in a city",
    {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 12}, "unit": {"enum": ["C", "F"]}},
        "required": ["city", "unit"],
    },
)
TIME = Tool("get_time", "The time")
TOOLS = (WEATHER, TIME)
TEMPLATES = {"hermes": QWEN25, "llama3": LLAMA31, "mistral": MISTRAL_V03}

# What models of each family write, and the calls it holds.
REPLIES = {
    "hermes": (
        "Let me check.\n<tool_call>\n"
        '{"name": "get_weather", "arguments": {"city": "Oslo", "unit": "C"}}\n</tool_call>\n'
        '<tool_call>\n{"name": "get_time", "arguments": {}}\n</tool_call>',
        "Let me check.\n",
    ),
    "llama3": (
        '<|python_tag|>{"name": "get_weather", "parameters": {"city": "Oslo", "unit": "C"}}; '
        '{"name": "get_time", "parameters": {}}',
        "",
    ),
    "mistral": (
        '[TOOL_CALLS] [{"name": "get_weather", "arguments": {"city": "Oslo", "unit": "C"}}, '
        '{"name": "get_time", "arguments": {}}]',
        "",
    ),
}
EXPECTED = [("get_weather", {"city": "Oslo", "unit": "C"}), ("get_time", {})]


def read(fam: tool_calls.Family, pieces: list[str], forced: bool = False):
    """Feed the pieces; the text, the streamed call pieces and the calls."""
    reader = tool_calls.CallReader(fam, TOOLS, forced)
    text, streamed = "", []
    for piece in pieces:
        out, got = reader.feed(piece)
        text += out
        streamed += got
    out, got, calls = reader.end(cut=False)
    return text + out, streamed + got, calls


def test_each_family_is_recognised_from_its_template():
    assert tool_calls.family(QWEN25).name == "hermes"
    assert tool_calls.family(LLAMA31).name == "llama3"
    assert tool_calls.family(MISTRAL_V03).name == "mistral"
    assert all(tool_calls.family(t).template_tools for t in TEMPLATES.values())
    plain = tool_calls.family(CHATML_TEMPLATE)
    assert plain.name == "hermes" and not plain.template_tools
    assert tool_calls.family(None) == plain


@pytest.mark.parametrize("name", sorted(REPLIES))
@pytest.mark.parametrize("one_by_one", [False, True])
def test_each_familys_calls_are_read_whole_or_streamed(name, one_by_one):
    reply, before = REPLIES[name]
    fam = tool_calls.family(TEMPLATES[name])
    text, pieces, calls = read(fam, list(reply) if one_by_one else [reply])
    assert text == before
    assert [(c.name, json.loads(c.arguments)) for c in calls] == EXPECTED
    for i, call in enumerate(calls):
        mine = [p for p in pieces if p.index == i]
        assert mine[0].id == call.id and mine[0].name == call.name
        assert "".join(p.arguments for p in mine) == call.arguments
    if one_by_one:
        assert len(pieces) > 2 * len(calls)  # the arguments arrive in pieces


# The other ways Llama 3.x models write several calls in one reply.
LLAMA3_MULTI = [
    '{"name": "get_weather", "parameters": {"city": "Oslo", "unit": "C"}}\n'
    '{"name": "get_time", "parameters": {}}',
    '[{"name": "get_weather", "parameters": {"city": "Oslo", "unit": "C"}}, '
    '{"name": "get_time", "parameters": {}}]',
    '{"type": "function", "name": "get_weather", "parameters": {"city": "Oslo", "unit": "C"}}; '
    '{"type": "function", "name": "get_time", "arguments": {}}',
]


@pytest.mark.parametrize("reply", LLAMA3_MULTI)
@pytest.mark.parametrize("one_by_one", [False, True])
def test_llama3_replies_with_several_calls_give_every_call(reply, one_by_one):
    fam = tool_calls.family(LLAMA31)
    text, pieces, calls = read(fam, list(reply) if one_by_one else [reply])
    assert text == ""
    assert [(c.name, json.loads(c.arguments)) for c in calls] == EXPECTED
    assert [p.index for p in pieces if p.id] == [0, 1]
    for i, call in enumerate(calls):
        assert "".join(p.arguments for p in pieces if p.index == i) == call.arguments


@pytest.mark.parametrize("name", sorted(REPLIES))
def test_a_reply_that_ends_inside_its_second_call_keeps_the_first(name):
    reply = REPLIES[name][0]
    cut = reply[: reply.rindex("get_time") + 12]  # the second call has no arguments yet
    text, _, calls = read(tool_calls.family(TEMPLATES[name]), [cut])
    assert text == REPLIES[name][1]
    assert [(c.name, json.loads(c.arguments)) for c in calls] == EXPECTED[:1]


def test_text_streams_at_once_except_what_may_become_a_marker():
    reader = tool_calls.CallReader(tool_calls.HERMES, TOOLS, forced=False)
    assert reader.feed("Sunny in Oslo <tool") == ("Sunny in Oslo ", [])
    assert reader.feed("s are fun") == ("<tools are fun", [])
    assert reader.end(cut=False) == ("", [], ())


def test_a_call_to_an_unknown_tool_or_broken_json_stays_text():
    for reply in ('<tool_call>{"name": "rm_rf", "arguments": {}}</tool_call>', "<tool_call>{oops"):
        text, pieces, calls = read(tool_calls.HERMES, [reply])
        assert (text, pieces, calls) == (reply, [], ())


def test_a_llama3_reply_that_is_not_a_call_is_text():
    fam = tool_calls.family(LLAMA31)
    assert read(fam, list("It is sunny."))[0] == "It is sunny."
    assert read(fam, list('{"a": 1}'))[0] == '{"a": 1}'


def test_a_cut_off_call_keeps_its_name_and_the_arguments_so_far():
    reader = tool_calls.CallReader(tool_calls.HERMES, TOOLS, forced=True)
    reader.feed('<tool_call>\n{"name": "get_weather", "arguments": {"city": "Os')
    text, _, calls = reader.end(cut=True)
    assert text == "" and calls[0].name == "get_weather"
    assert calls[0].arguments == '{"city": "Os'


# -- on tiny models carrying each family's template -------------------------------------------


@pytest.fixture(scope="module", params=sorted(TEMPLATES))
def family_model(request, tmp_path_factory) -> Iterator[tuple[str, LlamaCppRuntime]]:
    name = request.param
    path = build_tiny_gguf(tmp_path_factory.mktemp(name) / "tiny.gguf", template=TEMPLATES[name])
    runtime = LlamaCppRuntime(str(path), LlamaCppOptions(n_ctx=2048, threads=1))
    runtime.load()
    yield name, runtime
    runtime.unload()


def ask(choice: str, messages: list[ChatMessage] | None = None, **sampling) -> ChatRequest:
    settings = {"max_tokens": 150, "temperature": 0, **sampling}
    return ChatRequest(
        messages or [ChatMessage("user", "Weather in Oslo?")],
        Sampling(**settings),
        tools=TOOLS,
        tool_choice=choice,
    )


def prompt_text(runtime: LlamaCppRuntime, request: ChatRequest) -> str:
    return runtime.detokenize(runtime.tokenize_chat(request))


def test_the_template_presents_the_tools_itself(family_model):
    _, runtime = family_model
    prompt = prompt_text(runtime, ask("auto"))
    assert '"get_weather"' in prompt and "Current weather in a city" in prompt
    assert "You can call these functions" not in prompt  # not our own offer


@pytest.mark.parametrize("choice", ["get_weather", "required"])
def test_a_forced_call_is_written_and_read_the_familys_way(family_model, choice):
    name, runtime = family_model
    deltas = list(runtime.chat_stream(ask(choice, temperature=1.0, seed=2)))
    last = deltas[-1]
    assert last.finish_reason == "tool_calls" and "".join(d.text for d in deltas) == ""
    (call,) = last.tool_calls
    tool = {"get_weather": WEATHER, "get_time": TIME}[call.name]
    jsonschema.validate(json.loads(call.arguments), tool_calls.parameters(tool))
    pieces = [p for d in deltas for p in d.call_pieces]
    assert pieces[0].name == call.name and "".join(p.arguments for p in pieces) == call.arguments
    if name == "mistral":
        assert len(call.id) == 9 and call.id.isalnum()


def test_a_history_turn_with_two_calls_keeps_both_in_every_family(family_model):
    # Llama 3.x templates render one call per assistant turn (Meta's raise on more): each
    # call then gets its own turn, so none is lost.
    name, runtime = family_model
    ids = ("a1B2c3D4e", "f5G6h7I8j") if name == "mistral" else ("call_1", "call_2")
    calls = (
        ToolCall(ids[0], "get_weather", '{"city": "Oslo", "unit": "C"}'),
        ToolCall(ids[1], "get_time", "{}"),
    )
    messages = [
        ChatMessage("user", "Weather and time?"),
        ChatMessage("assistant", None, tool_calls=calls),
        ChatMessage("tool", "sunny", tool_call_id=ids[0]),
        ChatMessage("tool", "noon", tool_call_id=ids[1]),
    ]
    prompt = prompt_text(runtime, ask("auto", messages))
    assert '"get_weather"' in prompt.split("Weather and time?")[1]
    assert '"get_time"' in prompt.split("Weather and time?")[1]
    assert prompt.index("sunny") < prompt.index("noon")


def test_the_history_of_calls_and_results_renders_in_the_familys_form(family_model):
    name, runtime = family_model
    call_id = "a1B2c3D4e" if name == "mistral" else "call_1"
    call = ToolCall(call_id, "get_weather", '{"city": "Oslo", "unit": "C"}')
    messages = [
        ChatMessage("user", "Weather in Oslo?"),
        ChatMessage("assistant", None, tool_calls=(call,)),
        ChatMessage("tool", "sunny", tool_call_id=call_id),
    ]
    prompt = prompt_text(runtime, ask("auto", messages))
    args = '{"city": "Oslo", "unit": "C"}'
    written = {
        "hermes": f'<tool_call>\n{{"name": "get_weather", "arguments": {args}}}',
        "llama3": f'{{"name": "get_weather", "parameters": {args}}}',
        "mistral": f'[TOOL_CALLS] [{{"name": "get_weather", "arguments": {args}',
    }[name]
    assert written in prompt and "sunny" in prompt


def test_an_auto_reply_that_starts_a_call_becomes_one(family_model):
    name, runtime = family_model
    # Push the model toward the family's first call character; the rest is the model's own,
    # so a call only appears when it completes one: the text must then not show the marker.
    first = {"hermes": "<", "llama3": "{", "mistral": "["}[name]
    bias = {runtime.tokenize(first, False)[0]: 30.0}
    result = runtime.chat(ask("auto", max_tokens=40, logit_bias=bias))
    if result.tool_calls:
        assert result.finish_reason == "tool_calls"
    else:
        assert result.text.startswith(first)  # never a call: the text comes back whole


def test_a_mistral_history_with_foreign_ids_gets_nine_character_ids_that_still_pair(tmp_path):
    # Mistral's templates refuse any call id but nine letters and digits (the ids its models
    # are given); an id made elsewhere (by OpenAI, another model) is cut to nine the same way
    # in the call and in its result.
    path = build_tiny_gguf(tmp_path / "m.gguf", template=MISTRAL_V03)
    runtime = LlamaCppRuntime(str(path), LlamaCppOptions(n_ctx=1024, threads=1))
    runtime.load()
    try:
        call = ToolCall("call_123456789abc", "get_weather", "{}")
        messages = [
            ChatMessage("user", "hi"),
            ChatMessage("assistant", None, tool_calls=(call,)),
            ChatMessage("tool", "x", tool_call_id=call.id),
        ]
        prompt = prompt_text(runtime, ask("auto", messages))
        ids = re.findall(r'"id": "(\w+)"', prompt) + re.findall(r'"call_id": "(\w+)"', prompt)
        assert len(ids) == 2 and ids[0] == ids[1]
        assert len(ids[0]) == 9 and ids[0].isalnum() and "call_123456789abc" not in prompt
    finally:
        runtime.unload()
