"""Each family's replies, as its models write them and llama.cpp prints them with special
tokens, read by the family's format (runtimes/llamacpp/formats): reasoning, answer and tool
calls come apart the same whether the reply is fed whole, in two at any boundary, or one
character at a time; the answer never shows a marker, and text is handed out at once unless
it may still begin a marker."""

from __future__ import annotations

import datetime
import json
import random
import re

import jinja2
import pytest
from jinja2.sandbox import ImmutableSandboxedEnvironment
from localoip.runtimes.capabilities import Tool, ToolCall
from localoip.runtimes.llamacpp.formats.families import RECOGNISED as RECOGNISED_FORMATS
from localoip.runtimes.llamacpp.formats.families import recognise, recognised
from localoip.runtimes.llamacpp.formats.format import Format
from localoip.runtimes.llamacpp.formats.reader import ReplyReader
from support.chats import WEATHER
from support.families import FAMILIES
from support.family import ANSWER, ARGUMENTS, CALL_REASONING, REASONING, TEMPLATES, Family
from support.paths import REPO
from support.scripted import CASES, IDS, printed

README = REPO / "README.md"
README_SECTION = "Reasoning and tool calls: the model families"
TOOLS = (Tool("get_weather", "", WEATHER["function"]["parameters"]), Tool("get_time", ""))

# The format each family's template is recognised as, and whether its reasoning is read.
RECOGNISED = {
    "qwen2.5": ("hermes", None),
    "qwen3": ("hermes", "<think>"),
    "qwen3-coder": ("qwen3-coder", None),
    "deepseek-r1-distill": ("deepseek", "<think>"),
    "deepseek-v3.1": ("deepseek", "<think>"),
    "gpt-oss": ("gpt-oss", "<|channel|>analysis<|message|>"),
    "llama3.1": ("llama3", None),
    "mistral-small-3.1": ("mistral", None),
    "mistral-small-3.2": ("mistral", None),
    "mistral-reasoning": ("mistral", "[THINK]"),
    "granite-3.3": ("granite", "<think>"),
    "command-r7b": ("command-r7b", "<|START_THINKING|>"),
    "glm-4.5": ("glm-4.5", "<think>"),
    "kimi-k2": ("kimi-k2", None),
    "phi-4-mini": ("phi-4-mini", None),
    "smollm3": ("hermes", "<think>"),
    "gemma-3": ("hermes", None),
}


def _raise(message: str) -> None:
    raise jinja2.TemplateError(message)


def generation_prompt(family: Family) -> str:
    """The family's template rendered for one user message, with the generation prompt."""
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"]
    )
    env.globals.update(
        raise_exception=_raise, strftime_now=lambda f: datetime.datetime.now().strftime(f)
    )
    return env.from_string(family.template).render(
        messages=[{"role": "user", "content": "Hi"}],
        add_generation_prompt=True,
        bos_token=family.bos or "",
        eos_token=family.eos,
    )


def reply_of(family: Family, kind: str) -> str:
    """What llama.cpp prints of the example reply, detokenized with special tokens."""
    return printed(family, str(getattr(family, kind)), special=True)


def read(fmt: Format, pieces: list[str], opened: bool, tools=TOOLS):
    """Feed the pieces; the reasoning, the answer, the streamed calls and the whole calls."""
    reader = ReplyReader(fmt, tools, opened=opened)
    parts = [reader.feed(p, 1) for p in pieces]
    last, calls = reader.end()
    parts.append(last)
    streamed: dict[int, list[str]] = {}
    for piece in (p for part in parts for p in part.pieces):
        got = streamed.setdefault(piece.index, ["", "", ""])
        got[0], got[1] = piece.id or got[0], got[1] + piece.name
        got[2] += piece.arguments
    return (
        "".join(p.reasoning for p in parts),
        "".join(p.content for p in parts),
        tuple(ToolCall(*streamed[i]) for i in sorted(streamed)),
        calls,
    )


def expected(family: Family, kind: str) -> tuple[str, str, list[tuple[str, dict]]]:
    script = str(getattr(family, kind))
    if kind == "calling":
        reasoning = CALL_REASONING if CALL_REASONING in script else ""
        return reasoning, "", [("get_weather", json.loads(ARGUMENTS))]
    return REASONING if kind == "thinking" else "", ANSWER, []


@pytest.mark.parametrize("family", FAMILIES.values(), ids=list(FAMILIES))
def test_each_family_is_recognised_from_its_real_template(family):
    fmt = recognise(family.template)
    name, reasoning = RECOGNISED[family.name]
    assert fmt.name == name
    assert (fmt.reasoning.open if fmt.reasoning else None) == reasoning


def readme_families() -> tuple[dict[str, str], str]:
    """The README's table of families (each row's text by its format's name) and the
    paragraph on the fallback."""
    text = README.read_text()
    section = text.split(f"## {README_SECTION}\n", 1)[1].split("\n## ", 1)[0]
    rows = {m[1]: m[0] for m in re.finditer(r"^\| `([^`]+)` \|.*$", section, re.MULTILINE)}
    return rows, section.split("**The fallback.**", 1)[1]


def test_the_readme_lists_every_recognised_format_and_every_tested_family():
    rows, fallback = readme_families()
    assert {fmt.name for _, fmt in RECOGNISED_FORMATS} <= rows.keys()
    for family in FAMILIES.values():
        found = recognised(family.template)
        where = fallback if found is None else rows[found.name]
        assert f"`{family.name}`" in where, family.name


def test_a_model_without_a_template_gets_the_hermes_form_in_a_system_prompt():
    fmt = recognise(None)
    assert fmt.name == "hermes" and fmt.reasoning is None and not fmt.template_tools


@pytest.mark.parametrize("family", FAMILIES.values(), ids=list(FAMILIES))
def test_only_a_generation_prompt_that_opens_the_think_block_starts_the_reply_in_it(family):
    opened = recognise(family.template).opens_reasoning(generation_prompt(family))
    assert opened == (family.name == "deepseek-r1-distill")


@pytest.mark.parametrize(("family", "kind"), CASES, ids=IDS)
def test_each_example_reply_comes_apart_into_reasoning_answer_and_calls(family, kind):
    fmt = recognise(family.template)
    opened = fmt.opens_reasoning(generation_prompt(family))
    reasoning, content, streamed, calls = read(fmt, [reply_of(family, kind)], opened)
    want_reasoning, want_content, want_calls = expected(family, kind)
    assert (reasoning, content) == (want_reasoning, want_content)
    assert [(c.name, json.loads(c.arguments)) for c in calls] == want_calls
    assert streamed == calls  # the pieces add up to the whole calls


@pytest.mark.parametrize(("family", "kind"), CASES, ids=IDS)
def test_a_reply_split_anywhere_reads_the_same(family, kind):
    fmt = recognise(family.template)
    opened = fmt.opens_reasoning(generation_prompt(family))
    text = reply_of(family, kind)
    whole = read(fmt, [text], opened)

    def same(pieces: list[str]) -> None:
        reasoning, content, streamed, calls = read(fmt, pieces, opened)
        assert (reasoning, content) == whole[:2]
        assert [(c.name, c.arguments) for c in calls] == [(c.name, c.arguments) for c in whole[3]]
        assert streamed == calls

    for cut in range(len(text) + 1):
        same([text[:cut], text[cut:]])
    same(list(text))
    rng = random.Random(23)
    for _ in range(20):
        cuts = sorted(rng.sample(range(1, len(text)), k=min(8, len(text) - 1)))
        same([text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)])


@pytest.mark.parametrize(
    ("family", "kind"),
    [(f, k) for f, k in CASES if k == "calling"],
    ids=[f.name for f, k in CASES if k == "calling"],
)
def test_call_ids_take_the_form_the_template_insists_on(family, kind):
    fmt = recognise(family.template)
    opened = fmt.opens_reasoning(generation_prompt(family))
    (call,) = read(fmt, [reply_of(family, kind)], opened)[3]
    if fmt.name == "mistral":  # its templates refuse any id but 9 letters and digits
        assert re.fullmatch("[A-Za-z0-9]{9}", call.id)
    elif fmt.name == "kimi-k2":  # as it writes calls, and its template names results
        assert call.id == "functions.get_weather:0"
    else:
        assert re.fullmatch("call_[0-9a-f]{24}", call.id)


@pytest.mark.parametrize(("family", "kind"), CASES, ids=IDS)
def test_no_marker_shows_in_the_answer_or_the_reasoning(family, kind):
    fmt = recognise(family.template)
    opened = fmt.opens_reasoning(generation_prompt(family))
    reasoning, content, _, _ = read(fmt, list(reply_of(family, kind)), opened)
    for marker in (*fmt.markers(), *(s.text for s in family.specials)):
        assert marker not in content and marker not in reasoning


@pytest.mark.parametrize(
    ("family", "kind"),
    [(f, k) for f, k in CASES if k != "calling"],
    ids=[i for (f, k), i in zip(CASES, IDS, strict=True) if k != "calling"],
)
def test_reasoning_and_answer_are_handed_out_as_each_character_arrives(family, kind):
    """The example words hold no marker's first character, so nothing of them is held back
    but the reasoning's trailing spaces (a space may end the reasoning block)."""
    fmt = recognise(family.template)
    opened = fmt.opens_reasoning(generation_prompt(family))
    text = reply_of(family, kind)
    reader = ReplyReader(fmt, TOOLS, opened=opened)
    reasoning = content = ""
    for end in range(1, len(text) + 1):
        got = reader.feed(text[end - 1])
        reasoning, content = reasoning + got.reasoning, content + got.content
        for words, out, trim in ((REASONING, reasoning, True), (ANSWER, content, False)):
            start = text.find(words)
            if kind == "thinking" or words == ANSWER:
                sent = text[start:end][: len(words)] if start >= 0 and end > start else ""
                assert out == (sent.rstrip() if trim else sent)


@pytest.mark.parametrize(("family", "kind"), CASES, ids=IDS)
def test_reasoning_tokens_are_the_tokens_of_the_reasoning_block(family, kind):
    """Fed one character a token, every character from the reasoning's opening marker (or
    the reply's start, where the prompt opened it) through its closing marker counts."""
    fmt = recognise(family.template)
    opened = fmt.opens_reasoning(generation_prompt(family))
    text = reply_of(family, kind)
    reader = ReplyReader(fmt, TOOLS, opened=opened)
    for ch in text:
        reader.feed(ch, 1)
    reader.end()
    r = fmt.reasoning
    if r is None or (REASONING if kind == "thinking" else CALL_REASONING) not in text:
        want = 0
    else:
        start = 0 if opened else text.index(r.open)
        want = text.index(r.close) + len(r.close) - start
    assert reader.reasoning_tokens == want


# Families whose markers are CONTROL tokens: llama-cpp-python's default detokenizing
# (special=False) drops them, so the runtime must print special tokens for these to be read.
NEEDS_SPECIALS = {
    ("deepseek-v3.1", "calling"),
    ("mistral-small-3.1", "calling"),
    ("mistral-small-3.2", "calling"),
    ("mistral-reasoning", "thinking"),
    ("mistral-reasoning", "calling"),
    ("granite-3.3", "calling"),
    ("command-r7b", "thinking"),
    ("command-r7b", "calling"),
    ("kimi-k2", "calling"),
    ("phi-4-mini", "calling"),
}


def test_replies_read_without_special_tokens_lose_exactly_the_control_token_markers():
    lost = set()
    for family, kind in CASES:
        fmt = recognise(family.template)
        opened = fmt.opens_reasoning(generation_prompt(family))
        script = str(getattr(family, kind))
        with_specials = read(fmt, [printed(family, script, special=True)], opened)
        without = read(fmt, [printed(family, script, special=False)], opened)
        if with_specials[:2] != without[:2] or len(with_specials[3]) != len(without[3]):
            lost.add((family.name, kind))
    assert lost == NEEDS_SPECIALS


def test_mistral_small_31_writes_the_call_list_and_32_names_the_call():
    """The list form is told by the template, whatever else recognise() changes (3.1 shows
    no [THINK], so its reasoning markers are dropped too: that once hid the list form)."""
    older, newer = (
        recognise(FAMILIES[n].template) for n in ("mistral-small-3.1", "mistral-small-3.2")
    )
    assert (older.calls.named, older.reasoning) == (False, None)
    assert (newer.calls.named, newer.reasoning) == (True, None)
    assert recognise(FAMILIES["mistral-reasoning"].template).calls.named


def test_deepseek_v31_is_told_from_r1_by_how_its_template_writes_calls():
    template = (TEMPLATES / "deepseek-ai-DeepSeek-V3.1.jinja").read_text()
    fmt = recognise(template)
    assert fmt.name == "deepseek" and fmt.calls.v31 and fmt.reasoning is not None
    assert not recognise(FAMILIES["deepseek-r1-distill"].template).calls.v31
    text = (
        "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>"  # noqa: RUF001
        f"{ARGUMENTS}<｜tool▁call▁end｜><｜tool▁calls▁end｜>"  # noqa: RUF001
    )
    _, content, _, calls = read(fmt, list(f"Plan.</think>{text}"), opened=True)
    assert content == "" and [(c.name, c.arguments) for c in calls] == [("get_weather", ARGUMENTS)]
    env = ImmutableSandboxedEnvironment()
    for thinking in (True, False):
        prompt = env.from_string(template).render(
            messages=[{"role": "user", "content": "Hi"}],
            add_generation_prompt=True,
            bos_token="",
            thinking=thinking,
        )
        assert fmt.opens_reasoning(prompt) == thinking
