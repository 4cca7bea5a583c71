"""Tool calls as each format reads them beyond the families' examples: several calls, a call
to a tool the request does not have, calls when no tools are offered, `parallel_tool_calls`
off, text that only looks like a call, a call cut short, and arguments typed by the schema
in the XML forms."""

from __future__ import annotations

import itertools
import json

import pytest
from localoip.runtimes.capabilities import TextDelta, Tool
from localoip.runtimes.folding import as_delta, gather
from localoip.runtimes.llamacpp.formats import families
from localoip.runtimes.llamacpp.formats.deltas import ReplyDeltas
from localoip.runtimes.llamacpp.formats.families import recognise
from localoip.runtimes.llamacpp.formats.format import Format
from localoip.runtimes.llamacpp.formats.reader import ReplyReader
from support.families import FAMILIES

WEATHER = Tool(
    "get_weather",
    "Current weather in a city",
    {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"enum": ["C", "F"]},
            "days": {"type": "integer"},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["city"],
    },
)
TIME = Tool("get_time", "The time")
TOOLS = (WEATHER, TIME)
TWO = [("get_weather", {"city": "Oslo", "unit": "C"}), ("get_time", {})]

# Two calls, as each format writes them, and the text before them.
TWO_CALLS = {
    "hermes": (
        families.HERMES,
        "Let me check.\n<tool_call>\n"
        '{"name": "get_weather", "arguments": {"city": "Oslo", "unit": "C"}}\n</tool_call>\n'
        '<tool_call>\n{"name": "get_time", "arguments": {}}\n</tool_call>',
        "Let me check.\n",
    ),
    "llama3": (
        families.LLAMA3,
        '<|python_tag|>{"name": "get_weather", "parameters": {"city": "Oslo", "unit": "C"}}; '
        '{"name": "get_time", "parameters": {}}',
        "",
    ),
    "llama3-list": (
        families.LLAMA3,
        '[{"type": "function", "name": "get_weather", "parameters": {"city": "Oslo", "unit": '
        '"C"}}, {"name": "get_time", "parameters": {}}]',
        "",
    ),
    "mistral-list": (
        families.MISTRAL,
        '[TOOL_CALLS] [{"name": "get_weather", "arguments": {"city": "Oslo", "unit": "C"}}, '
        '{"name": "get_time", "arguments": {}}]',
        "",
    ),
    "mistral-named": (
        families.MISTRAL,
        '[TOOL_CALLS]get_weather[CALL_ID]a1b2c3d4e[ARGS]{"city": "Oslo", "unit": "C"}'
        "[TOOL_CALLS]get_time[ARGS]{}",
        "",
    ),
    "deepseek-v3.1": (
        families.DEEPSEEK,
        "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>"  # noqa: RUF001
        '{"city": "Oslo", "unit": "C"}<｜tool▁call▁end｜><｜tool▁call▁begin｜>get_time'  # noqa: RUF001
        "<｜tool▁sep｜>{}<｜tool▁call▁end｜><｜tool▁calls▁end｜>",  # noqa: RUF001
        "",
    ),
    "kimi-k2": (
        families.KIMI_K2,
        "<|tool_calls_section_begin|><|tool_call_begin|>functions.get_weather:0"
        '<|tool_call_argument_begin|>{"city": "Oslo", "unit": "C"}<|tool_call_end|>'
        "<|tool_call_begin|>functions.get_time:1<|tool_call_argument_begin|>{}"
        "<|tool_call_end|><|tool_calls_section_end|>",
        "",
    ),
    "command-r7b": (
        families.COMMAND_R7B,
        '<|START_ACTION|>[\n    {"tool_call_id": "0", "tool_name": "get_weather", "parameters": '
        '{"city": "Oslo", "unit": "C"}},\n    {"tool_call_id": "1", "tool_name": "get_time", '
        '"parameters": {}}\n]<|END_ACTION|>',
        "",
    ),
    "phi-4-mini": (
        families.PHI4_MINI,
        '<|tool_call|>[{"type": "function", "function": {"name": "get_weather", "arguments": '
        '{"city": "Oslo", "unit": "C"}}}]<|/tool_call|><|tool_call|>{"name": "get_time", '
        '"arguments": {}}<|/tool_call|>',
        "",
    ),
    "qwen3-coder": (
        families.QWEN3_CODER,
        "Checking.\n<tool_call>\n<function=get_weather>\n<parameter=city>\nOslo\n</parameter>\n"
        "<parameter=unit>\nC\n</parameter>\n</function>\n</tool_call>\n<tool_call>\n"
        "<function=get_time>\n</function>\n</tool_call>",
        "Checking.\n",
    ),
    "glm-4.5": (
        families.GLM45,
        "<tool_call>get_weather\n<arg_key>city</arg_key>\n<arg_value>Oslo</arg_value>\n"
        "<arg_key>unit</arg_key>\n<arg_value>C</arg_value>\n</tool_call>\n"
        "<tool_call>get_time\n</tool_call>",
        "",
    ),
    "gpt-oss": (
        families.GPT_OSS,
        "<|channel|>commentary<|message|>Checking.<|end|><|start|>assistant<|channel|>"
        'commentary to=functions.get_weather <|constrain|>json<|message|>{"city": "Oslo", '
        '"unit": "C"}',
        "Checking.",
    ),
}


def read(fmt: Format, text: str, tools=TOOLS, one_by_one: bool = True, **options):
    reader = ReplyReader(fmt, tools, **options)
    parts = [reader.feed(ch) for ch in text] if one_by_one else [reader.feed(text)]
    last, calls = reader.end()
    parts.append(last)
    content = "".join(p.content for p in parts)
    pieces = [p for part in parts for p in part.pieces]
    return content, pieces, calls, reader


def named(calls) -> list[tuple[str, object]]:
    return [(c.name, json.loads(c.arguments)) for c in calls]


@pytest.mark.parametrize("case", sorted(TWO_CALLS))
@pytest.mark.parametrize("one_by_one", [False, True])
def test_each_format_reads_several_calls(case, one_by_one):
    fmt, text, before = TWO_CALLS[case]
    content, pieces, calls, _ = read(fmt, text, one_by_one=one_by_one)
    want = TWO[:1] if case == "gpt-oss" else TWO  # harmony makes one call a generation
    assert (content, named(calls)) == (before, want)
    assert [p.name for p in pieces if p.name] == [n for n, _ in want]
    assert len({c.id for c in calls}) == len(calls)


@pytest.mark.parametrize("case", sorted(TWO_CALLS))
def test_without_parallel_calls_only_the_first_is_kept_and_generation_may_stop(case):
    """`finished` comes once the first call has ended, before the second begins (harmony's
    call runs to the end of the reply: its end token stops generation anyway)."""
    fmt, text, _ = TWO_CALLS[case]
    reader = ReplyReader(fmt, TOOLS, parallel=False)
    second = text.find("get_time")
    for i, ch in enumerate(text):
        reader.feed(ch)
        if i < text.index("get_weather"):
            assert not reader.finished
        if i == second:
            assert reader.finished
    _, calls = reader.end()
    assert named(calls) == TWO[:1] and reader.finished


def test_mistral_keeps_the_nine_character_id_it_wrote():
    _, _, calls, _ = read(families.MISTRAL, TWO_CALLS["mistral-named"][1])
    assert calls[0].id == "a1b2c3d4e" and len(calls[1].id) == 9 and calls[1].id.isalnum()


def test_kimi_ids_name_the_function_and_the_calls_index():
    _, _, calls, _ = read(families.KIMI_K2, TWO_CALLS["kimi-k2"][1])
    assert [c.id for c in calls] == ["functions.get_weather:0", "functions.get_time:1"]


@pytest.mark.parametrize("case", sorted(TWO_CALLS))
def test_without_tools_calls_are_not_read_and_stay_text(case):
    fmt, text, _ = TWO_CALLS[case]
    content, pieces, calls, _ = read(fmt, text, tools=())
    assert calls == () and pieces == []
    if fmt is not families.GPT_OSS:
        assert content == text


def test_a_call_to_a_tool_the_request_does_not_have_stays_text():
    text = '<tool_call>\n{"name": "launch", "arguments": {}}\n</tool_call>'
    content, pieces, calls, _ = read(families.HERMES, text)
    assert (content, pieces, calls) == (text, [], ())


@pytest.mark.parametrize(
    "text",
    [
        '{"answer": "a JSON reply, not a call"}',
        "<tool_call> is how I would call a tool",
        '[TOOL_CALLS] {"city": 1}',
    ],
)
def test_text_that_only_begins_like_a_call_stays_text(text):
    fmt = families.MISTRAL if text.startswith("[") else families.LLAMA3
    fmt = families.HERMES if text.startswith("<") else fmt
    content, _, calls, _ = read(fmt, text)
    assert (content, calls) == (text, ())


def test_a_call_cut_short_keeps_the_arguments_it_has():
    text = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Os'
    content, _, calls, _ = read(families.HERMES, text)
    assert content == "" and [(c.name, c.arguments) for c in calls] == [
        ("get_weather", '{"city": "Os')
    ]


def test_arguments_written_as_a_json_string_are_its_text():
    text = '<tool_call>{"name": "get_weather", "arguments": "{\\"city\\": \\"Oslo\\"}"}</tool_call>'
    _, _, calls, _ = read(families.HERMES, text)
    assert named(calls) == [("get_weather", {"city": "Oslo"})]


def test_arguments_written_before_the_name_still_stream_after_it():
    text = '<tool_call>{"arguments": {"city": "Oslo"}, "name": "get_weather"}</tool_call>'
    _, pieces, calls, _ = read(families.HERMES, text)
    assert named(calls) == [("get_weather", {"city": "Oslo"})]
    assert pieces[0].name == "get_weather" and "".join(p.arguments for p in pieces) == (
        '{"city": "Oslo"}'
    )


@pytest.mark.parametrize("fmt", [families.QWEN3_CODER, families.GLM45], ids=["qwen3-coder", "glm"])
def test_xml_arguments_take_the_types_of_the_tools_schema(fmt):
    values = {"city": "1984", "unit": "C", "days": "3", "tags": '["a", "b"]'}
    if fmt is families.QWEN3_CODER:
        params = "".join(f"<parameter={k}>\n{v}\n</parameter>\n" for k, v in values.items())
        text = f"<tool_call>\n<function=get_weather>\n{params}</function>\n</tool_call>"
    else:
        params = "".join(
            f"<arg_key>{k}</arg_key>\n<arg_value>{v}</arg_value>\n" for k, v in values.items()
        )
        text = f"<tool_call>get_weather\n{params}</tool_call>"
    _, pieces, calls, _ = read(fmt, text)
    want = {"city": "1984", "unit": "C", "days": 3, "tags": ["a", "b"]}
    assert named(calls) == [("get_weather", want)]
    args = [p.arguments for p in pieces if p.arguments]
    assert len(args) == 5  # one piece per argument as it completes, then the closing brace


def test_qwen3_coder_reads_a_function_block_without_its_tool_call_tag():
    text = "<function=get_time>\n</function>"
    content, _, calls, _ = read(families.QWEN3_CODER, text)
    assert (content, named(calls)) == ("", [("get_time", {})])


def test_granite_drops_its_response_tags():
    text = "<think>Plan.</think><response>Done.</response>"
    reader = ReplyReader(families.GRANITE, TOOLS)
    got = reader.feed(text)
    last, _ = reader.end()
    assert (got.reasoning + last.reasoning, got.content + last.content) == ("Plan.", "Done.")


def test_a_reasoning_block_never_closed_is_all_reasoning():
    reader = ReplyReader(families.HERMES, TOOLS)
    got = reader.feed("<think>\nStill thinking <tool_call> about it   ", 3)
    last, calls = reader.end()
    assert got.reasoning + last.reasoning == "Still thinking <tool_call> about it"
    assert got.content + last.content == "" and calls == ()
    assert reader.reasoning_tokens == 3


def test_leading_whitespace_stays_in_a_plain_answer_and_goes_before_markers():
    for text, want in [("  Hi", "  Hi"), ("\n<think>x</think>\n\nHi", "Hi")]:
        reader = ReplyReader(families.HERMES, TOOLS)
        got = reader.feed(text)
        assert got.content + reader.end()[0].content == want


def test_a_prompt_that_opened_the_think_block_leaves_the_reply_in_it():
    reader = ReplyReader(families.DEEPSEEK, TOOLS, opened=True)
    got = reader.feed("Let me think.\n</think>\n\nHello")
    last, _ = reader.end()
    assert (got.reasoning, got.content + last.content) == ("Let me think.", "Hello")
    assert families.DEEPSEEK.opens_reasoning("<｜Assistant｜><think>\n")  # noqa: RUF001
    assert not families.HERMES.opens_reasoning("<|im_start|>assistant\n<think>\n\n</think>\n\n")


def test_deltas_read_as_a_reply_fold_into_reasoning_answer_calls_and_token_counts():
    text = (
        '<think>\nPlan.\n</think>\n\nOK.<tool_call>{"name": "get_time", "arguments": {}}'
        "</tool_call>"
    )
    deltas = ReplyDeltas(ReplyReader(families.HERMES, TOOLS))
    *pieces, (a, b) = itertools.pairwise([0, 3, 9, 22, 30, len(text)])
    out = [deltas.read(TextDelta(text[a:b]), b - a) for a, b in pieces]
    out.append(deltas.read(TextDelta(text[a:b], "stop", usage=(5, len(text))), b - a))
    result = gather(d for d in out if d is not None)
    assert (result.reasoning, result.text, result.finish_reason) == ("Plan.", "OK.", "tool_calls")
    assert [(c.name, c.arguments) for c in result.tool_calls] == [("get_time", "{}")]
    assert result.reasoning_tokens == len("<think>\nPlan.\n</think>")
    assert as_delta(result).reasoning == "Plan."


@pytest.mark.parametrize(("tail", "content"), [("\n<tool_c", ""), ("\nSo", "So")])
def test_a_call_marker_cut_by_the_token_limit_is_not_an_answer(tail, content):
    call = '<tool_call>{"name": "get_time", "arguments": {}}</tool_call>'
    deltas = ReplyDeltas(ReplyReader(families.HERMES, TOOLS))
    first = deltas.read(TextDelta(call + tail), 1)
    last = deltas.read(TextDelta("", "length"), 1)
    result = gather(d for d in (first, last) if d is not None)
    assert (result.text, result.finish_reason, len(result.tool_calls)) == (content, "length", 1)


def test_tools_offered_in_a_system_prompt_are_read_in_hermes_form_or_the_familys_own():
    r1 = recognise(FAMILIES["deepseek-r1-distill"].template)
    assert not r1.template_tools  # its template lists no tools: they go in a system prompt
    fmt = families.prompted(r1)
    hermes = '<tool_call>\n{"name": "get_time", "arguments": {}}\n</tool_call>'
    own = (
        "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_time\n"  # noqa: RUF001
        "```json\n{}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>"  # noqa: RUF001
    )
    for text in (hermes, own):
        content, _, calls, _ = read(fmt, f"Hm.</think>\n\n{text}", opened=True)
        assert (content, named(calls)) == ("", [("get_time", {})])
    assert families.prompted(families.HERMES) == families.HERMES


def test_the_reader_says_while_the_reply_is_inside_its_reasoning():
    reader = ReplyReader(families.HERMES, TOOLS)
    states = []
    for piece in ["<thi", "nk>", "Hm", "</think>", "Hi"]:
        reader.feed(piece)
        states.append(reader.in_reasoning)
    assert states == [False, True, True, False, False]


@pytest.mark.parametrize(
    ("text", "content", "calls"),
    [
        (  # the recipient in the role's header, before the channel
            "<|start|>assistant to=functions.get_time<|channel|>commentary json<|message|>{}",
            "",
            [("get_time", {})],
        ),
        ("Plain words, no channels.", "Plain words, no channels.", []),
        ("<|channel|>final<|message|>Hi<|end|><|start|>assistant<|channel|>fin", "Hi", []),
        (
            "<|channel|>commentary<|message|>Hi<|end|><|start|>assistant<|channel|>final<|messa"
            "ge|> there",
            "Hi there",
            [],
        ),
    ],
)
def test_harmony_messages_in_their_other_shapes(text, content, calls):
    got, _, found, _ = read(families.GPT_OSS, text)
    assert (got, named(found)) == (content, calls)


@pytest.mark.parametrize("case", sorted(TWO_CALLS))
def test_several_calls_split_in_two_anywhere_read_the_same(case):
    fmt, text, _ = TWO_CALLS[case]
    whole = read(fmt, text, one_by_one=False)
    for cut in range(1, len(text)):
        reader = ReplyReader(fmt, TOOLS)
        parts = [reader.feed(text[:cut]), reader.feed(text[cut:])]
        last, calls = reader.end()
        content = "".join(p.content for p in [*parts, last])
        assert (content, named(calls)) == (whole[0], named(whole[2]))
