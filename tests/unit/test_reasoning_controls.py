"""A chat's reply controls through the real llama.cpp runtime on scripted models
(support/scripted.py), serial and batched: a forced call or a response format comes after the
family's reasoning; without parallel calls only the first call is made and generation stops;
a reasoning budget closes the reasoning with the family's marker and the answer follows;
reasoning_effort reaches each template as its own switch."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from localoip.runtimes.capabilities import (
    ChatMessage,
    ChatRequest,
    InputError,
    Sampling,
    TextResult,
    Tool,
    ToolCall,
)
from localoip.runtimes.folding import gather
from localoip.runtimes.llamacpp.runtime import LlamaCppRuntime
from localoip.runtimes.options import LlamaCppOptions
from support.chats import WEATHER
from support.configs import SCRIPTED_OPTIONS
from support.engine import engine_deltas
from support.families import FAMILIES, GPT_OSS, QWEN3, QWEN25
from support.family import ANSWER, ARGUMENTS, CALL_REASONING, HERMES_CALL, REASONING
from support.scripted import Turn, build_scripted_gguf

GREEDY = Sampling(temperature=0, max_tokens=400)
FUNCTION = WEATHER["function"]
TOOLS = (
    Tool(FUNCTION["name"], FUNCTION["description"], FUNCTION["parameters"]),
    Tool("get_time", "The time"),
)
HI = [ChatMessage("user", "Hi there")]
CITY = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
# Families whose templates take the tools, so a forced call is written in their own form.
OWN_FORM = ["qwen3", "qwen2.5", "gpt-oss", "llama3.1", "mistral-reasoning", "granite-3.3"]


def load(path: Path, **options) -> LlamaCppRuntime:
    settings = {"n_ctx": 8192, "threads": 1, "parallel": 2, "prompt_chunk": 256, "warmup": False}
    settings.update(SCRIPTED_OPTIONS)
    runtime = LlamaCppRuntime(str(path), LlamaCppOptions(**{**settings, **options}))
    runtime.load()
    return runtime


@pytest.fixture(scope="module")
def loaded() -> Iterator[dict[str, LlamaCppRuntime]]:
    runtimes: dict[str, LlamaCppRuntime] = {}
    yield runtimes
    for runtime in runtimes.values():
        runtime.unload()


def model(loaded, folder: Path, stem: str) -> LlamaCppRuntime:
    if stem not in loaded:
        loaded[stem] = load(folder / f"{stem}.gguf")
    return loaded[stem]


def reply(runtime: LlamaCppRuntime, request: ChatRequest, way: str) -> TextResult:
    return runtime.chat(request) if way == "serial" else gather(engine_deltas(runtime, request))


def calls(result: TextResult) -> list[tuple[str, dict]]:
    return [(c.name, json.loads(c.arguments)) for c in result.tool_calls]


WAYS = ["serial", "batched"]


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("name", OWN_FORM)
def test_a_forced_call_comes_after_the_familys_reasoning(loaded, scripted_dir, name, way):
    runtime = model(loaded, scripted_dir, f"{name}-calling")
    script = str(FAMILIES[name].calling)
    for choice in ("required", "get_weather"):
        request = ChatRequest(HI, GREEDY, tools=TOOLS, tool_choice=choice)
        result = reply(runtime, request, way)
        assert calls(result) == [("get_weather", json.loads(ARGUMENTS))]
        assert result.reasoning == (CALL_REASONING if CALL_REASONING in script else "")
        assert (result.text, result.finish_reason) == ("", "tool_calls")


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize(
    ("family", "script"),
    [
        (QWEN3, '<think>\nHm.\n</think>\n\n{"city": "Paris"}'),
        (
            GPT_OSS,
            "<|channel|>analysis<|message|>Hm.<|end|><|start|>assistant"
            '<|channel|>final<|message|>{"city": "Paris"}',
        ),
    ],
    ids=["qwen3", "gpt-oss"],
)
def test_a_response_format_answer_comes_after_the_reasoning(tmp_path, family, script, way):
    runtime = load(build_scripted_gguf(tmp_path / "json.gguf", family=family, script=script))
    try:
        result = reply(runtime, ChatRequest(HI, GREEDY, json_schema=CITY), way)
        assert (result.reasoning, result.text) == ("Hm.", '{"city": "Paris"}')
        tools = ChatRequest(HI, GREEDY, tools=TOOLS, json_schema=CITY)
        result = reply(runtime, tools, way)  # auto with a format: a call or the answer
        assert (result.reasoning, result.text, result.tool_calls) == (
            "Hm.",
            '{"city": "Paris"}',
            (),
        )
    finally:
        runtime.unload()


TIME_CALL = '<tool_call>\n{"name": "get_time", "arguments": {}}\n</tool_call>'


@pytest.fixture(scope="module")
def two_calls(tmp_path_factory) -> Iterator[LlamaCppRuntime]:
    """A Qwen2.5 model that calls get_weather, then get_time, in one reply."""
    folder = tmp_path_factory.mktemp("two-calls")
    path = build_scripted_gguf(
        folder / "two.gguf", family=QWEN25, script=f"{HERMES_CALL}\n{TIME_CALL}"
    )
    runtime = load(path)
    yield runtime
    runtime.unload()


@pytest.mark.parametrize("way", WAYS)
def test_parallel_calls_are_all_read(two_calls, way):
    result = reply(two_calls, ChatRequest(HI, GREEDY, tools=TOOLS), way)
    assert calls(result) == [("get_weather", json.loads(ARGUMENTS)), ("get_time", {})]


@pytest.mark.parametrize("way", WAYS)
def test_without_parallel_calls_the_first_call_ends_the_reply(two_calls, way):
    whole = reply(two_calls, ChatRequest(HI, GREEDY, tools=TOOLS), way)
    one = ChatRequest(HI, GREEDY, tools=TOOLS, parallel_tool_calls=False)
    result = reply(two_calls, one, way)
    assert calls(result) == [("get_weather", json.loads(ARGUMENTS))]
    assert result.finish_reason == "tool_calls"
    assert result.completion_tokens < whole.completion_tokens  # it stopped there


@pytest.fixture(scope="module")
def endless(tmp_path_factory) -> Path:
    """A Qwen3 model whose reasoning never closes; once `</think>` is in its context (and
    none of its reasoning yet), it answers."""
    folder = tmp_path_factory.mktemp("endless")
    return build_scripted_gguf(
        folder / "endless.gguf",
        family=QWEN3,
        script=[f"<think>\n{REASONING}", Turn(ANSWER, cue="</think>")],
    )


@pytest.mark.parametrize("way", WAYS)
def test_a_spent_reasoning_budget_closes_the_reasoning_and_the_answer_follows(endless, way):
    runtime = load(endless)
    try:
        unbounded = reply(runtime, ChatRequest(HI, GREEDY), way)
        assert (unbounded.reasoning, unbounded.text) == (REASONING, "")
        result = reply(runtime, ChatRequest(HI, GREEDY, max_reasoning_tokens=1), way)
        assert (result.reasoning, result.text, result.finish_reason) == ("", ANSWER, "stop")
        assert result.reasoning_tokens == 2  # <think>, then the </think> put in
    finally:
        runtime.unload()


@pytest.fixture(scope="module")
def endless_then_call(tmp_path_factory) -> Path:
    """A Qwen3 model whose reasoning never closes; once `</think>` is in its context (and
    none of its reasoning yet), it calls get_weather."""
    folder = tmp_path_factory.mktemp("endless-call")
    return build_scripted_gguf(
        folder / "endless-call.gguf",
        family=QWEN3,
        script=[f"<think>\n{REASONING}", Turn(HERMES_CALL, cue="</think>")],
    )


@pytest.mark.parametrize("way", WAYS)
def test_a_budget_closes_the_reasoning_of_a_forced_call_and_the_call_follows(
    endless_then_call, way
):
    runtime = load(endless_then_call)
    try:
        request = ChatRequest(HI, GREEDY, tools=TOOLS, tool_choice="required")
        budgeted = replace(request, max_reasoning_tokens=1)
        result = reply(runtime, budgeted, way)
        assert calls(result) == [("get_weather", json.loads(ARGUMENTS))]
        assert (result.reasoning, result.text, result.reasoning_tokens) == ("", "", 2)
    finally:
        runtime.unload()


def test_a_budget_the_reasoning_keeps_within_changes_nothing(loaded, scripted_dir):
    runtime = model(loaded, scripted_dir, "qwen3-thinking")
    whole = runtime.chat(ChatRequest(HI, GREEDY))
    within = runtime.chat(ChatRequest(HI, GREEDY, max_reasoning_tokens=100))
    assert (within.reasoning, within.text) == (whole.reasoning, whole.text) == (REASONING, ANSWER)
    assert within.completion_tokens == whole.completion_tokens


def test_a_models_reasoning_budget_is_its_default(endless):
    runtime = load(endless, max_reasoning_tokens=1)
    try:
        assert runtime.chat(ChatRequest(HI, GREEDY)).text == ANSWER
        more = runtime.chat(ChatRequest(HI, GREEDY, max_reasoning_tokens=100))
        assert (more.reasoning, more.text) == (REASONING, "")
    finally:
        runtime.unload()


def test_a_negative_budget_is_refused(loaded, scripted_dir):
    runtime = model(loaded, scripted_dir, "qwen3-thinking")
    with pytest.raises(InputError) as refused:
        runtime.chat(ChatRequest(HI, GREEDY, max_reasoning_tokens=-1))
    assert refused.value.param == "max_reasoning_tokens"


def prompt(runtime: LlamaCppRuntime, **fields) -> str:
    return runtime.detokenize(runtime.tokenize_chat(ChatRequest(HI, GREEDY, **fields)))


EMPTY_THINK = "<think>\n\n</think>\n\n"


@pytest.mark.parametrize(("effort", "off"), [("none", True), ("minimal", True), ("low", False)])
def test_qwen3_takes_the_effort_as_enable_thinking(loaded, scripted_dir, effort, off):
    runtime = model(loaded, scripted_dir, "qwen3-thinking")
    assert prompt(runtime, reasoning_effort=effort).endswith(EMPTY_THINK) == off
    assert not prompt(runtime).endswith(EMPTY_THINK)  # none asked: the template's default


@pytest.mark.parametrize(
    ("effort", "said"),
    [("none", "low"), ("minimal", "low"), ("medium", "medium"), ("high", "high")],
)
def test_gpt_oss_takes_the_effort_as_its_own(loaded, scripted_dir, effort, said):
    runtime = model(loaded, scripted_dir, "gpt-oss-thinking")
    assert f"Reasoning: {said}" in prompt(runtime, reasoning_effort=effort)


def test_granite_thinks_when_any_effort_is_asked_for(loaded, scripted_dir):
    runtime = model(loaded, scripted_dir, "granite-3.3-thinking")
    assert "<think></think>" in prompt(runtime, reasoning_effort="high")
    assert "<think></think>" not in prompt(runtime, reasoning_effort="none")


NO_THINK_TEMPLATE = (
    "{%- for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{%- if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    "{#- a user turn that ends in /no_think asks for no reasoning #}"
)


def test_a_template_whose_only_switch_is_no_think_gets_it_in_the_last_user_turn(tmp_path):
    path = build_scripted_gguf(
        tmp_path / "switch.gguf", family=QWEN3, script=ANSWER, chat_template=NO_THINK_TEMPLATE
    )
    runtime = load(path)
    try:
        assert "Hi there /no_think<|im_end|>" in prompt(runtime, reasoning_effort="none")
        assert "/no_think" not in prompt(runtime, reasoning_effort="high")
    finally:
        runtime.unload()


def test_template_kwargs_win_over_the_effort(loaded, scripted_dir):
    runtime = model(loaded, scripted_dir, "qwen3-thinking")
    given = {"enable_thinking": True}
    assert not prompt(runtime, reasoning_effort="none", template_kwargs=given).endswith(EMPTY_THINK)
    assert prompt(runtime, template_kwargs={"enable_thinking": False}).endswith(EMPTY_THINK)


def test_a_models_effort_is_its_default(scripted_dir):
    runtime = load(scripted_dir / "qwen3-thinking.gguf", reasoning_effort="none")
    try:
        assert prompt(runtime).endswith(EMPTY_THINK)
        assert not prompt(runtime, reasoning_effort="high").endswith(EMPTY_THINK)
    finally:
        runtime.unload()


def test_an_unknown_effort_is_refused(loaded, scripted_dir):
    runtime = model(loaded, scripted_dir, "qwen3-thinking")
    with pytest.raises(InputError) as refused:
        runtime.chat(ChatRequest(HI, GREEDY, reasoning_effort="extreme"))
    assert refused.value.param == "reasoning_effort"


def history(*turns: ChatMessage) -> list[ChatMessage]:
    return [ChatMessage("user", "Weather in Paris?"), *turns]


def test_qwen3_gets_back_the_reasoning_of_a_turn_after_the_last_question(loaded, scripted_dir):
    runtime = model(loaded, scripted_dir, "qwen3-thinking")
    call = ToolCall("call_1", "get_weather", ARGUMENTS)
    messages = history(
        ChatMessage("assistant", None, tool_calls=(call,), reasoning="I should look."),
        ChatMessage("tool", '{"weather": "sunny"}', tool_call_id="call_1"),
    )
    text = runtime.detokenize(runtime.tokenize_chat(ChatRequest(messages, GREEDY, tools=TOOLS)))
    assert "<think>\nI should look.\n</think>" in text


def test_a_raw_harmony_reply_sent_back_is_routed_not_refused(loaded, scripted_dir):
    runtime = model(loaded, scripted_dir, "gpt-oss-thinking")
    raw = (
        "<|channel|>analysis<|message|>Hm.<|end|><|start|>assistant"
        "<|channel|>final<|message|>Sunny."
    )
    messages = [*history(ChatMessage("assistant", raw)), ChatMessage("user", "Thanks!")]
    text = runtime.detokenize(runtime.tokenize_chat(ChatRequest(messages, GREEDY)))
    assert "<|channel|>final<|message|>Sunny.<|end|>" in text


def test_raw_think_tags_sent_back_are_read_as_the_turns_reasoning(loaded, scripted_dir):
    runtime = model(loaded, scripted_dir, "qwen3-thinking")
    messages = history(ChatMessage("assistant", "<think>\nHm.\n</think>\n\nSunny."))
    text = runtime.detokenize(runtime.tokenize_chat(ChatRequest(messages, GREEDY)))
    assert text.count("<think>") == 1 and "Sunny." in text  # the template's own, once
