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

from collections.abc import Sequence
from pathlib import Path

from support.family import Family
from support.gguf_parts import Template, write_llama_gguf
from support.scripted_plan import (
    Turn,
    compile_script,
    eog_texts,
    prints_as_control,
    split_specials,
    turns_of,
)

__all__ = ["EXAMPLES", "Turn", "build_examples", "build_scripted_gguf", "printed"]

# The example replies a family may have (Family.thinking, .calling, .answering).
EXAMPLES = ("thinking", "calling", "answering")


def build_scripted_gguf(
    path: Path,
    *,
    family: Family,
    script: str | Sequence[str | Turn],
    name: str | None = None,
    chat_template: Template | bool = True,
    max_piece: int = 32,
    n_ctx: int = 4096,
) -> Path:
    """Write a scripted GGUF to `path`; return it.

    `script` is the reply text, or the replies of successive turns: the first a str or a
    `Turn`, each later one a `Turn` with its cue. Texts may hold the family's special tokens,
    by their text; each reply ends in the family's eos unless it ends in an end-of-generation
    token itself (gpt-oss's `<|call|>`). `chat_template` is the family's (True), none (False,
    as gemma3's real GGUF), or the text given (or named templates, gguf_parts.Template).
    `max_piece` caps a piece's bytes (the reply's tokens are pieces of its text between
    special tokens): llama-cpp-python 0.3.36 prints "" for a token longer than 32 bytes.
    The file holds F32 tensors, about 0.2-1 MB.

    Raises ValueError for a script the network cannot hold: a cue that is not one token, a
    turn whose (token, state) keys clash, or a turn that starts with a one-byte text between
    special tokens (a prompt may end in that byte).
    """
    from support.scripted_weights import scripted_tensors

    plan = compile_script(family, turns_of(script), max_piece)
    shape, tensors = scripted_tensors(plan, n_ctx)
    return write_llama_gguf(
        path,
        name=name or f"scripted-{family.name}",
        vocab=plan.vocab,
        shape=shape,
        template=family.template if chat_template is True else chat_template or None,
        tensors=tensors,
    )


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
