"""Model families as their GGUFs carry them: the real chat template (tests/data/templates), the
special tokens with the GGUF token type each is given, and the bos/eos/eot tokens.

A token's type follows llama.cpp's converter (conversion/base.py `get_vocab_base`): an added
token is CONTROL when its tokenizer marks it special or its text looks special (`<|…|>`,
`<｜…｜>`), else USER_DEFINED. The difference shows in chat replies: llama-cpp-python
detokenizes with `special=False`, so a CONTROL token's text vanishes and a USER_DEFINED one's
stays. llama.cpp then retypes a few tokens by their text when it loads a vocabulary
(`LLAMA_CPP_USER_DEFINED`, and the end-of-generation list): that is llama.cpp's doing, not
the file's, so the families keep the types the files hold.
"""

from __future__ import annotations

# ruff: noqa: RUF001, RUF002, RUF003  (DeepSeek's tokens are spelled with fullwidth bars)
from dataclasses import dataclass
from pathlib import Path

TEMPLATES = Path(__file__).resolve().parents[1] / "data" / "templates"

# The example replies' words (a family's `thinking` and `calling`): `calling` calls
# support.chats.WEATHER's get_weather with these arguments.
REASONING = "The user asks about the weather in Paris."
ANSWER = "It is sunny in Paris."
CALL_REASONING = "I should look up the weather."
ARGUMENTS = '{"city": "Paris", "unit": "C"}'
HERMES_CALL = f'<tool_call>\n{{"name": "get_weather", "arguments": {ARGUMENTS}}}\n</tool_call>'

# llama.cpp (src/llama-vocab.cpp) types these USER_DEFINED at load whatever the file says
# ("quick hack for gpt-oss, always render these tokens").
LLAMA_CPP_USER_DEFINED = frozenset({"<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"})


@dataclass(frozen=True, slots=True)
class Special:
    """A special token: its text, and whether the real GGUF types it CONTROL (else
    USER_DEFINED)."""

    text: str
    control: bool


def control(*texts: str) -> tuple[Special, ...]:
    return tuple(Special(t, True) for t in texts)


def user_defined(*texts: str) -> tuple[Special, ...]:
    return tuple(Special(t, False) for t in texts)


@dataclass(frozen=True, slots=True)
class Family:
    """A model family's tokenizer and chat template, as one real GGUF of it has them.

    `model` names that model; `template_file` is its template under tests/data/templates;
    `bos`, `eos` and `eot` are texts of `specials` (bos None: the GGUF has none);
    `add_bos` is the GGUF's `tokenizer.ggml.add_bos_token`.

    `thinking` and `calling` are replies as the family's models write them after the
    template's generation prompt (None: the family does not do that): `thinking` reasons
    (REASONING), then answers (ANSWER); `calling` calls get_weather (ARGUMENTS), after
    reasoning (CALL_REASONING) where the family reasons."""

    name: str
    model: str
    template_file: str
    specials: tuple[Special, ...]
    eos: str
    bos: str | None = None
    eot: str | None = None
    add_bos: bool = False
    thinking: str | None = None
    calling: str | None = None

    @property
    def template(self) -> str:
        """The chat template text, as `tokenizer.chat_template` holds it."""
        return (TEMPLATES / self.template_file).read_text()

    def special(self, text: str) -> Special:
        """The special token of this text; KeyError when the family has none."""
        for s in self.specials:
            if s.text == text:
                return s
        raise KeyError(f"{self.name} has no special token {text!r}")


QWEN_CHAT = control("<|endoftext|>", "<|im_start|>", "<|im_end|>")

QWEN25 = Family(
    "qwen2.5",
    "Qwen/Qwen2.5-7B-Instruct",
    "Qwen-Qwen2.5-7B-Instruct.jinja",
    QWEN_CHAT + user_defined("<tool_call>", "</tool_call>"),
    eos="<|im_end|>",
    bos="<|endoftext|>",
    calling=HERMES_CALL,
)

QWEN3 = Family(
    "qwen3",
    "Qwen/Qwen3-0.6B",
    "Qwen-Qwen3-0.6B.jinja",
    QWEN_CHAT
    + user_defined(
        "<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>", "<think>", "</think>"
    ),
    eos="<|im_end|>",
    bos="<|endoftext|>",
    thinking=f"<think>\n{REASONING}\n</think>\n\n{ANSWER}",
    calling=f"<think>\n{CALL_REASONING}\n</think>\n\n{HERMES_CALL}",
)

QWEN3_CODER = Family(
    "qwen3-coder",
    "Qwen/Qwen3-Coder-30B-A3B-Instruct",
    "Qwen3-Coder.jinja",
    QWEN3.specials,
    eos="<|im_end|>",
    bos="<|endoftext|>",
    calling=(
        "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n"
        "<parameter=unit>\nC\n</parameter>\n</function>\n</tool_call>"
    ),
)

# The Qwen-based distill: Qwen's vocabulary with DeepSeek's chat tokens in place of ChatML's
# (its tokenizer_config marks <｜User｜> and <｜Assistant｜> not special, but their text looks
# special, so the converter types them CONTROL). Its tool-call markers (<｜tool▁calls▁begin｜>,
# ...) are not tokens of this vocabulary: they are plain text.
DEEPSEEK_R1_DISTILL = Family(
    "deepseek-r1-distill",
    "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B",
    "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja",
    control("<｜end▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>", "<｜begin▁of▁sentence｜>")
    + control("<|EOT|>")
    + user_defined("<think>", "</think>", "<tool_call>", "</tool_call>"),
    eos="<｜end▁of▁sentence｜>",
    bos="<｜begin▁of▁sentence｜>",
    add_bos=True,
    # The generation prompt opens the think block: the reply holds only its end.
    thinking=f"{REASONING}\n</think>\n\n{ANSWER}",
    calling=(
        f"{CALL_REASONING}\n</think>\n\n<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function"
        f"<｜tool▁sep｜>get_weather\n```json\n{ARGUMENTS}\n```<｜tool▁call▁end｜>"
        "<｜tool▁calls▁end｜>"
    ),
)

# o200k_harmony: every special is CONTROL in the file; llama.cpp retypes four of them
# (LLAMA_CPP_USER_DEFINED), and with both <|return|> and <|call|> present <|end|> is not an
# end of generation.
GPT_OSS = Family(
    "gpt-oss",
    "openai/gpt-oss-120b",
    "openai-gpt-oss-120b.jinja",
    control(
        "<|startoftext|>",
        "<|endoftext|>",
        "<|return|>",
        "<|constrain|>",
        "<|channel|>",
        "<|start|>",
        "<|end|>",
        "<|message|>",
        "<|call|>",
    ),
    eos="<|return|>",
    bos="<|startoftext|>",
    thinking=(
        f"<|channel|>analysis<|message|>{REASONING}<|end|>"
        f"<|start|>assistant<|channel|>final<|message|>{ANSWER}"
    ),
    calling=(
        f"<|channel|>analysis<|message|>{CALL_REASONING}<|end|><|start|>assistant"
        "<|channel|>commentary to=functions.get_weather <|constrain|>json"
        f"<|message|>{ARGUMENTS}<|call|>"
    ),
)

FAMILIES = {f.name: f for f in (QWEN25, QWEN3, QWEN3_CODER, DEEPSEEK_R1_DISTILL, GPT_OSS)}
