"""What a model family is, for a scripted GGUF (support/scripted.py): its real chat template
(tests/data/templates), its special tokens with the GGUF token type each is given, its
bos/eos/eot tokens, and example replies as its models write them (support/families.py lists
the families).

A token's type follows llama.cpp's converter (conversion/base.py `get_vocab_base`): an added
token is CONTROL when its tokenizer marks it special or its text looks special (`<|…|>`,
`<｜…｜>`), else USER_DEFINED. The difference shows in chat replies: llama-cpp-python
detokenizes with `special=False`, so a CONTROL token's text vanishes and a USER_DEFINED one's
stays. llama.cpp then retypes a few tokens by their text when it loads a vocabulary
(`LLAMA_CPP_USER_DEFINED`, and the end-of-generation list): that is llama.cpp's doing, not
the file's, so the families keep the types the files hold.
"""

from __future__ import annotations

# ruff: noqa: RUF002  (DeepSeek's tokens are spelled with fullwidth bars)
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
    `bos`, `eos`, `eot` and `eom` are texts of `specials` (None: the GGUF names none);
    `add_bos` is the GGUF's `tokenizer.ggml.add_bos_token`.

    `thinking` and `calling` are replies as the family's models write them after the
    template's generation prompt (None: the family does not do that): `thinking` reasons
    (REASONING), then answers (ANSWER); `calling` calls get_weather (ARGUMENTS), after
    reasoning (CALL_REASONING) where the family reasons; `answering` answers plainly, as a
    family that does not reason writes."""

    name: str
    model: str
    template_file: str
    specials: tuple[Special, ...]
    eos: str
    bos: str | None = None
    eot: str | None = None
    eom: str | None = None
    add_bos: bool = False
    thinking: str | None = None
    calling: str | None = None
    answering: str | None = None

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
