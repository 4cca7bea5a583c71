"""The grammar of a forced reply in each family's format: llama.cpp's parser takes it, and it
admits the family's own example call, after the family's reasoning where it reasons (and
with only the end of the block where the prompt opened it); it admits nothing else."""

from __future__ import annotations

import pytest
from localoip.runtimes.capabilities import Tool
from localoip.runtimes.llamacpp.formats import families
from localoip.runtimes.llamacpp.formats.families import recognise
from localoip.runtimes.llamacpp.json_grammar import GrammarBuilder, compile_grammar
from support.chats import WEATHER
from support.families import FAMILIES, GPT_OSS
from support.family import ARGUMENTS, REASONING
from support.gbnf import matches
from support.scripted import printed

TOOLS = (Tool("get_weather", "", WEATHER["function"]["parameters"]), Tool("get_time", ""))
CALLING = [f for f in FAMILIES.values() if f.calling]


def forced(fmt, opened: bool, many: bool = False) -> str:
    builder = GrammarBuilder()
    return builder.text(fmt.reply_rule(builder, fmt.calls_rule(builder, TOOLS, many), opened))


@pytest.mark.parametrize("family", CALLING, ids=[f.name for f in CALLING])
@pytest.mark.parametrize("many", [False, True])
def test_the_forced_call_grammar_admits_the_familys_own_call(family, many):
    fmt = recognise(family.template)
    opened = family.name == "deepseek-r1-distill"
    grammar = forced(fmt, opened, many)
    compile_grammar(grammar, "tools")  # llama.cpp's parser takes it
    text = printed(family, family.calling, special=True)
    assert matches(grammar, text)


@pytest.mark.parametrize("family", CALLING, ids=[f.name for f in CALLING])
def test_the_forced_call_grammar_admits_no_other_call_and_no_bare_answer(family):
    fmt = recognise(family.template)
    grammar = forced(fmt, family.name == "deepseek-r1-distill")
    text = printed(family, family.calling, special=True)
    assert not matches(grammar, text.replace("Paris", "Paris-Ile-de-France"))  # maxLength 12
    assert not matches(grammar, text.replace("get_weather", "get_wind"))
    assert not matches(grammar, "It is sunny in Paris.")


def test_a_reasoning_family_may_reason_before_its_call_or_not():
    fmt = families.HERMES
    call = '<tool_call>\n{"name": "get_time", "arguments": {}}\n</tool_call>'
    for text in (call, f"<think>\nHm, </thi </think>\n\n{call}", f"\n<think></think>{call}"):
        assert matches(forced(fmt, opened=False), text)
    assert not matches(forced(fmt, opened=False), f"<think>a</think>b</think>{call}")
    assert matches(forced(fmt, opened=True), f"Hm.\n</think>\n\n{call}")
    assert not matches(forced(fmt, opened=True), call)


def test_parallel_calls_are_admitted_only_when_many_are_allowed():
    call = '<tool_call>\n{"name": "get_time", "arguments": {}}\n</tool_call>'
    two = f"{call}\n{call}"
    assert matches(forced(families.HERMES, False, many=True), two)
    assert not matches(forced(families.HERMES, False, many=False), two)


def test_a_response_format_answer_comes_after_the_reasoning_in_the_familys_wrapping():
    builder = GrammarBuilder()
    json = builder.schema({"type": "object"}, "answer", "response_format")
    fmt = recognise(GPT_OSS.template)
    grammar = builder.text(fmt.reply_rule(builder, fmt.answer_rule(builder, json), False))
    compile_grammar(grammar, "response_format")
    analysis = f"<|channel|>analysis<|message|>{REASONING}<|end|><|start|>assistant"
    assert matches(grammar, f"{analysis}<|channel|>final<|message|>{ARGUMENTS}")
    assert matches(grammar, f"<|channel|>final<|message|>{ARGUMENTS}")
    assert not matches(grammar, ARGUMENTS)


def test_an_xml_argument_keeps_to_its_enum():
    family = FAMILIES["qwen3-coder"]
    grammar = forced(recognise(family.template), False)
    assert matches(grammar, family.calling)
    assert not matches(grammar, family.calling.replace("\nC\n", "\nK\n"))


def test_auto_with_a_response_format_admits_a_call_or_the_answer_both_after_reasoning():
    builder = GrammarBuilder()
    fmt = families.HERMES
    answer = fmt.answer_rule(builder, builder.schema({"type": "object"}, "answer", "rf"))
    body = f"{fmt.calls_rule(builder, TOOLS, False)} | {answer}"
    grammar = builder.text(fmt.reply_rule(builder, body, False))
    call = '<tool_call>\n{"name": "get_time", "arguments": {}}\n</tool_call>'
    for text in (call, '{"a": 1}', f"<think>Hm.</think>\n{call}", '<think>Hm.</think>{"a": 1}'):
        assert matches(grammar, text)
    assert not matches(grammar, "<think>Hm.</think>sunny")
