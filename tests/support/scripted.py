"""Scripted tiny GGUFs: real llama-architecture models whose greedy reply through llama.cpp is a
fixed text, written with a model family's real chat template and special tokens
(support/families.py).

    path = build_scripted_gguf(tmp / "qwen3.gguf", family=QWEN3,
                               script="<think>\\nLet me see.\\n</think>\\n\\nHello!")

A chat with that model, whatever its messages, replies with that text and ends (the family's
end-of-turn token follows the script), greedy or sampled: the script's token leads by about
20 logits. The reply's text is what llama-cpp-python prints of those tokens: a CONTROL
token's text is dropped unless tokens are detokenized with `special=True` (`printed`).

A script may hold several replies, one per turn (`Turn`): the first is the reply to a prompt
that holds no later turn's cue; turn j (j >= 1) is the reply to a prompt that holds its `cue`,
a token of the prompt (a family special such as `<tool_response>`, or an ASCII word that the
vocabulary gets as one token, such as a tool result's `sunny`), and no later turn's cue. A
tool call, then the answer after the tool result, is `[call, Turn(answer, cue="sunny")]`
with a tool result that says "sunny". A cue word must not occur in earlier prompts.

How (the shared NOTES, "Scripted tiny GGUFs"): the script's text between special tokens
becomes *output-only* tokens of at most `max_piece` bytes (no merge builds them, so no prompt
holds one). One attention layer finds the *state*: the latest piece that occurs once in the
script, else the highest cue in the prompt, else "start"; other heads of it find the previous
token. A SwiGLU FFN holds one unit per (current token, state) key of the script, or (previous
token, current token, state) where a pair alone would go on two ways, writing the next token;
a weaker default unit starts each turn's script in its start state whatever token ends the
prompt; a small constant bias makes the end-of-generation token win wherever the table knows
nothing. scripted_plan.py compiles a script, scripted_weights.py writes the tensors.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from support.families import FAMILIES
from support.family import ANSWER, ARGUMENTS, CALL_REASONING, REASONING, Family
from support.gguf_parts import Template, write_llama_gguf
from support.scripted_plan import (
    Turn,
    compile_script,
    eog_texts,
    prints_as_control,
    split_specials,
    turns_of,
)

__all__ = [
    "CASES",
    "EXAMPLES",
    "IDS",
    "SPLITS",
    "SPLIT_CASES",
    "Parts",
    "Turn",
    "build_examples",
    "build_scripted_gguf",
    "build_splits",
    "build_tool_turns",
    "marked_in_text",
    "parts_of",
    "printed",
]

# The example replies a family may have (Family.thinking, .calling, .answering).
EXAMPLES = ("thinking", "calling", "answering")
# Every family's examples, as (family, example), and their model names.
CASES = [(f, kind) for f in FAMILIES.values() for kind in EXAMPLES if getattr(f, kind)]
IDS = [f"{f.name}-{kind}" for f, kind in CASES]


def build_scripted_gguf(
    path: Path,
    *,
    family: Family,
    script: str | Sequence[str | Turn],
    name: str | None = None,
    chat_template: Template | bool = True,
    max_piece: int = 32,
    first_piece: int | None = None,
    n_ctx: int = 4096,
) -> Path:
    """Write a scripted GGUF to `path`; return it.

    `script` is the reply text, or the replies of successive turns: the first a str or a
    `Turn`, each later one a `Turn` with its cue. Texts may hold the family's special tokens,
    by their text; each reply ends in the family's eos unless it ends in an end-of-generation
    token itself (gpt-oss's `<|call|>`). `chat_template` is the family's (True), none (False,
    as gemma3's real GGUF), or the text given (or named templates, gguf_parts.Template).
    `max_piece` caps a piece's bytes (the reply's tokens are pieces of its text between
    special tokens): llama-cpp-python 0.3.36 prints "" for a token longer than 32 bytes;
    `first_piece` (default `max_piece`) caps the first piece of each text run, so that
    `max_piece=2, first_piece=1` cuts a run where `max_piece=2` does not. The file holds F32
    tensors, about 0.2-1 MB.

    Raises ValueError for a script the network cannot hold: a cue that is not one token, a
    turn whose (token, state) keys clash, or a turn that starts with a one-byte text between
    special tokens (a prompt may end in that byte).
    """
    from support.scripted_weights import scripted_tensors

    plan = compile_script(family, turns_of(script), max_piece, first_piece)
    shape, tensors = scripted_tensors(plan, n_ctx)
    return write_llama_gguf(
        path,
        name=name or f"scripted-{family.name}",
        vocab=plan.vocab,
        shape=shape,
        template=family.template if chat_template is True else chat_template or None,
        tensors=tensors,
    )


# A reply as a client reads it: reasoning, answer, and tool calls as (name, arguments).
Parts = tuple[str, str, list[tuple[str, dict]]]


def parts_of(family: Family, example: str) -> Parts:
    """What the family's example reply reads as: its reasoning (REASONING, CALL_REASONING where
    the call reasons first, else ""), its answer (ANSWER, "" for a call) and its call of
    get_weather with ARGUMENTS."""
    if example == "calling":
        reasoning = CALL_REASONING if CALL_REASONING in str(family.calling) else ""
        return reasoning, "", [("get_weather", json.loads(ARGUMENTS))]
    return (REASONING if example == "thinking" else ""), ANSWER, []


def build_examples(folder: Path, families: Sequence[Family]) -> dict[str, Path]:
    """Each family's example replies (EXAMPLES) as scripted GGUFs in `folder`, by model
    name `<family>-<example>` (such as "qwen3-thinking")."""
    built = {}
    for family in families:
        for example in EXAMPLES:
            script = getattr(family, example)
            if script is not None:
                name = f"{family.name}-{example}"
                built[name] = build_scripted_gguf(
                    folder / f"{name}.gguf", family=family, script=script, name=name
                )
    return built


def marked_in_text(family: Family, example: str) -> bool:
    """Whether the example's text between special tokens holds more than its reasoning and
    answer: markers, names or arguments that a token boundary could cut (a plain answer, or
    reasoning between marker tokens, has none)."""
    script = str(getattr(family, example))
    runs = "".join(text for text, special in split_specials(family, script) if not special)
    for words in (REASONING, CALL_REASONING, ANSWER):
        runs = runs.replace(words, "")
    return bool(runs.strip())


# The examples build_splits builds, and the two ways it cuts each text run: from its first
# byte, and one byte on.
SPLIT_CASES = [(f, kind) for f, kind in CASES if marked_in_text(f, kind)]
SPLITS = {"even": None, "odd": 1}


def build_splits(folder: Path, cases: Sequence[tuple[Family, str]]) -> dict[str, Path]:
    """The examples `cases` ((family, example) pairs) in the smallest pieces the network can
    hold, twice: cut from each text run's first byte, and cut one byte on. Pieces are two
    bytes where the script allows (a one-byte piece is a prompt's byte token: it carries no
    state, so one byte a token is out of reach), and then between the two models every byte
    boundary of the text between special tokens is a token boundary; three bytes or less
    where two-byte keys clash (Qwen3-Coder's and the DeepSeek distill's calls). By model name
    `<family>-<example>-split-even` and `...-split-odd`."""
    built = {}
    for family, example in cases:
        for split, first_piece in SPLITS.items():
            name = f"{family.name}-{example}-split-{split}"
            for size in range(2, 9):
                try:
                    built[name] = build_scripted_gguf(
                        folder / f"{name}.gguf",
                        family=family,
                        script=str(getattr(family, example)),
                        name=name,
                        max_piece=size,
                        first_piece=first_piece,
                    )
                    break
                except ValueError:
                    continue
            else:
                raise ValueError(f"{name}: no piece size up to 8 bytes holds the script")
    return built


def tool_answer(family: Family) -> str:
    """The family's plain answer after a tool result: harmony answers in its final channel."""
    if family.name == "gpt-oss":
        return f"<|channel|>final<|message|>{ANSWER}"
    return ANSWER


def build_tool_turns(folder: Path, families: Sequence[Family]) -> dict[str, Path]:
    """Each calling family's tool loop, by model name `<family>-turns`: its calling example,
    then `tool_answer` once the prompt holds the tool result's word "sunny"."""
    return {
        f"{f.name}-turns": build_scripted_gguf(
            folder / f"{f.name}-turns.gguf",
            family=f,
            script=[str(f.calling), Turn(tool_answer(f), cue="sunny")],
            name=f"{f.name}-turns",
        )
        for f in families
        if f.calling
    }


def printed(family: Family, text: str, special: bool = False) -> str:
    """What llama.cpp prints of `text`'s tokens: without `special`, CONTROL tokens' texts
    vanish (as llama.cpp types them once loaded); an end-of-generation token ends it."""
    out = []
    eog = eog_texts(family)
    for part, is_special in split_specials(family, text):
        if is_special and part in eog:
            break
        if is_special and not special and prints_as_control(family, part):
            continue
        out.append(part)
    return "".join(out)
