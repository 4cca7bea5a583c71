"""The reply formats of the model families localoip knows, and recognising a family from its
chat template's text (as llama.cpp does, by substrings the template holds). A template that
nothing recognises gets the Hermes form, offered in a system prompt."""

# ruff: noqa: RUF001  (DeepSeek's markers are spelled with fullwidth bars)
from __future__ import annotations

import re
from dataclasses import replace

from localoip.runtimes.llamacpp.formats.format import EitherCalls, Format, Reasoning
from localoip.runtimes.llamacpp.formats.harmony import (
    ANALYSIS,
    END,
    START,
    HarmonyCalls,
    read_harmony,
)
from localoip.runtimes.llamacpp.formats.json_calls import JsonCalls, Written
from localoip.runtimes.llamacpp.formats.output import kimi_id, mistral_id
from localoip.runtimes.llamacpp.formats.reply import read_tagged
from localoip.runtimes.llamacpp.formats.tagged_calls import (
    DS_CALLS,
    DeepSeekCalls,
    KimiCalls,
    MistralCalls,
)
from localoip.runtimes.llamacpp.formats.xml_calls import GlmCalls, Qwen3CoderCalls

THINK = Reasoning("<think>", "</think>")

HERMES = Format(
    "hermes",
    read_tagged,
    JsonCalls(
        "<tool_call>",
        Written("<tool_call>\n", "\n</tool_call>", "\n</tool_call>\n<tool_call>\n"),
        close="</tool_call>",
    ),
    THINK,
)
QWEN3_CODER = Format("qwen3-coder", read_tagged, Qwen3CoderCalls(), THINK)
LLAMA3 = Format(
    "llama3",
    read_tagged,
    JsonCalls(
        "", Written("", name="name", arguments="parameters"), at_start=("<|python_tag|>", "{", "[")
    ),
    one_call_per_turn=True,
)
_MISTRAL_LIST = JsonCalls("[TOOL_CALLS]", Written("[TOOL_CALLS][", "]", ", "))
MISTRAL = Format(
    "mistral",
    read_tagged,
    MistralCalls(named=True, listed=_MISTRAL_LIST),
    Reasoning("[THINK]", "[/THINK]"),
    make_id=mistral_id,
)
GPT_OSS = Format(
    "gpt-oss",
    read_harmony,
    HarmonyCalls(),
    Reasoning(ANALYSIS, END, after=f"{START}assistant"),
    answer=("<|channel|>final<|message|>", ""),
)
DEEPSEEK = Format("deepseek", read_tagged, DeepSeekCalls(), THINK)
GRANITE = Format(
    "granite",
    read_tagged,
    JsonCalls("<|tool_call|>", Written("<|tool_call|>[", "]", ", ")),
    THINK,
    dropped=("<response>", "</response>"),
)
PHI4_MINI = Format(
    "phi-4-mini",
    read_tagged,
    JsonCalls(
        "<|tool_call|>", Written("<|tool_call|>[", "]<|/tool_call|>", ", "), close="<|/tool_call|>"
    ),
)
COMMAND_R7B = Format(
    "command-r7b",
    read_tagged,
    JsonCalls(
        "<|START_ACTION|>",
        Written(
            "<|START_ACTION|>[\n    ",
            "\n]<|END_ACTION|>",
            ",\n    ",
            name="tool_name",
            arguments="parameters",
            id="tool_call_id",
        ),
        close="<|END_ACTION|>",
        names=("tool_name", "name"),
    ),
    Reasoning("<|START_THINKING|>", "<|END_THINKING|>"),
    dropped=("<|START_RESPONSE|>", "<|END_RESPONSE|>"),
    answer=("<|START_RESPONSE|>", "<|END_RESPONSE|>"),
)
GLM45 = Format("glm-4.5", read_tagged, GlmCalls(), THINK)
KIMI_K2 = Format("kimi-k2", read_tagged, KimiCalls(), THINK, make_id=kimi_id)

# (what the template holds, the family): the first whose texts are all there wins.
RECOGNISED: tuple[tuple[tuple[str, ...], Format], ...] = (
    (("<|channel|>",), GPT_OSS),
    (("<|tool_calls_section_begin|>",), KIMI_K2),
    ((DS_CALLS,), DEEPSEEK),
    (("<|START_ACTION|>",), COMMAND_R7B),
    (("<arg_key>",), GLM45),
    (("<function=", "<parameter="), QWEN3_CODER),
    (("[TOOL_CALLS]",), MISTRAL),
    (("<|tool|>",), PHI4_MINI),
    (("<|/tool_call|>",), PHI4_MINI),
    (("<|tool_call|>",), GRANITE),
    (("<|python_tag|>",), LLAMA3),
    (("<|start_header_id|>", '"parameters"'), LLAMA3),
    (("<tool_call>",), HERMES),
)
# A `tools` variable the template reads (not a quoted key such as Phi-4-mini's 'tools').
TOOLS_VARIABLE = re.compile(r"(?<!['\"])\btools\b(?!['\"])")
# DeepSeek V3.1 writes the name right after the call marker; R1 writes `function` there.
DEEPSEEK_V31 = re.compile(r"<｜tool▁call▁begin｜>'\s*\+\s*tool\['function'\]\['name'\]")


def recognised(template: str | None) -> Format | None:
    """The family of RECOGNISED whose texts a chat template holds, as listed there; None when
    none is (such a template gets the fallback, `recognise` says which)."""
    text = template or ""
    return next((f for needs, f in RECOGNISED if all(n in text for n in needs)), None)


def recognise(template: str | None) -> Format:
    """The reply format of a chat template (None: a model without one).

    A family's reasoning markers count only where its template shows them (Qwen2.5 writes
    Hermes calls but does not reason; Magistral's template shows `[THINK]`, Mistral
    Small's does not). Unrecognised templates get the Hermes form with `template_tools`
    off, so the tools are offered in a system prompt; one that shows `<think>` (SmolLM3)
    still has its reasoning read."""
    text = template or ""
    found = recognised(text)
    if found is None:
        return replace(HERMES, reasoning=THINK if "<think>" in text else None)
    fmt = found  # the family's variants are told apart before `fmt` is changed
    if found is DEEPSEEK and DEEPSEEK_V31.search(text):
        fmt = replace(fmt, calls=DeepSeekCalls(v31=True))
    if found is MISTRAL and "[ARGS]" not in text:
        fmt = replace(fmt, calls=replace(MISTRAL.calls, named=False))
    r = fmt.reasoning
    if r is not None and r.open not in text and r.close not in text:
        fmt = replace(fmt, reasoning=None)
    return replace(fmt, template_tools=TOOLS_VARIABLE.search(text) is not None)


def prompted(fmt: Format) -> Format:
    """The format of a reply to tools offered in a system prompt, in the Hermes form (for a
    template that takes no tools): the family's reasoning, and calls in the Hermes form (a
    forced call is written so) or, where the model keeps to it, its own."""
    if fmt.calls == HERMES.calls or fmt.layout is not read_tagged:
        return replace(fmt, calls=HERMES.calls)
    return replace(fmt, calls=EitherCalls(HERMES.calls, fmt.calls))
