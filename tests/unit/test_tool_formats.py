"""Tool calls in each model family's own form (Hermes/Qwen, Llama 3.x and Mistral) through
the runtime, on tiny random GGUFs that carry each family's chat template: the template lists
the tools, a forced call is written and read the family's way, and the history's calls render
in the family's form. (Reading replies is tests/unit/test_formats_*.py's; replies of each
family through the runtime are test_scripted_models.py's.)"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import replace

import jsonschema
import pytest
from localoip.runtimes.capabilities import ChatMessage, ChatRequest, Sampling, Tool, ToolCall
from localoip.runtimes.llamacpp.runtime import LlamaCppRuntime
from localoip.runtimes.llamacpp.tool_offer import parameters
from localoip.runtimes.options import LlamaCppOptions
from support.chat_templates import LLAMA31, MISTRAL_V03, QWEN25
from support.tiny_models import build_tiny_gguf

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
    one = replace(ask(choice, temperature=1.0, seed=2), parallel_tool_calls=False)
    deltas = list(runtime.chat_stream(one))
    last = deltas[-1]
    assert last.finish_reason == "tool_calls" and "".join(d.text for d in deltas) == ""
    (call,) = last.tool_calls
    tool = {"get_weather": WEATHER, "get_time": TIME}[call.name]
    jsonschema.validate(json.loads(call.arguments), parameters(tool))
    pieces = [p for d in deltas for p in d.call_pieces]
    assert pieces[0].name == call.name and "".join(p.arguments for p in pieces) == call.arguments
    if name == "mistral":
        assert len(call.id) == 9 and call.id.isalnum()


def test_a_forced_reply_may_make_several_calls_each_valid(family_model):
    _, runtime = family_model
    result = runtime.chat(ask("required", temperature=1.0, seed=2))
    assert result.tool_calls and result.finish_reason == "tool_calls"
    for call in result.tool_calls:
        tool = {"get_weather": WEATHER, "get_time": TIME}[call.name]
        jsonschema.validate(json.loads(call.arguments), parameters(tool))


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
