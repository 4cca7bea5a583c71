"""How a script becomes a scripted GGUF's plan (see scripted.py): its vocabulary, its turns as
tokens, the state each token sets and its attention score, and the ([previous token,] token,
state) -> next token table the FFN holds."""

from __future__ import annotations

# ruff: noqa: RUF001  (DeepSeek's tokens are spelled with fullwidth bars)
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from support.family import LLAMA_CPP_USER_DEFINED, Family
from support.gguf_parts import BYTE_CHAR, Vocab, byte_text, gpt2_bytes

# llama.cpp ends generation on these texts whatever the GGUF says (src/llama-vocab.cpp); <|end|>
# is left out when <|return|> and <|call|> are both in the vocabulary (gpt-oss).
EOG_TEXTS = frozenset(
    {
        "<|eot_id|>",
        "<|im_end|>",
        "<|end|>",
        "<|return|>",
        "<|call|>",
        "<end_of_turn>",
        "<|endoftext|>",
        "</s>",
        "<|eom_id|>",
        "<EOT>",
        "_<EOT>",
        "[EOT]",
        "[EOS]",
        "<|end_of_text|>",
        "<end_of_utterance>",
        "<eos>",
        "<｜end▁of▁sentence｜>",
    }
)
# A merge no UTF-8 text holds (0xFE 0xFF never occur in it): llama.cpp wants at least one.
SPARE_MERGE = f"{BYTE_CHAR[0xFE]} {BYTE_CHAR[0xFF]}"
WORD = re.compile(r"[A-Za-z]+")  # a cue word: merges build it from its letters
# Attention scores (logits): cue j scores CUE_SCORE + STEP_SCORE * (j - 1), and the script's
# pieces score above every cue, rising STEP_SCORE a piece; prompt tokens score 0.
CUE_SCORE = 20.0
STEP_SCORE = 25.0


@dataclass(frozen=True, slots=True)
class Turn:
    """One reply of a script, and the prompt token that selects it (None: the first turn)."""

    text: str
    cue: str | None = None


@dataclass(slots=True)
class Plan:
    """A script compiled against a family: the vocabulary, each turn's tokens (ending in an
    end-of-generation token), and what the network must know of each token."""

    vocab: Vocab
    turns: list[list[int]]
    score: dict[int, float] = field(default_factory=dict)  # attention score of state tokens
    state_of: dict[int, int] = field(default_factory=dict)  # the state a token sets
    starts: list[int] = field(default_factory=list)  # each turn's start state
    n_states: int = 0
    # (previous token or None, token, state) -> next token
    keys: dict[tuple[int | None, int, int], int] = field(default_factory=dict)


def turns_of(script: str | Sequence[str | Turn]) -> list[Turn]:
    """A script's turns; ValueError unless exactly the turns after the first have cues."""
    if isinstance(script, str):
        return [Turn(script)]
    turns = [t if isinstance(t, Turn) else Turn(t) for t in script]
    if not turns:
        raise ValueError("a script needs at least one reply")
    for i, turn in enumerate(turns):
        if (turn.cue is None) != (i == 0):
            raise ValueError("the first reply has no cue, and every later one has one")
    return turns


def split_specials(family: Family, text: str) -> list[tuple[str, bool]]:
    """`text` as (part, is_special) runs, special tokens matched longest first."""
    specials = sorted((s.text for s in family.specials), key=len, reverse=True)
    if not specials:
        return [(text, False)] if text else []
    pattern = re.compile("|".join(map(re.escape, specials)))
    parts: list[tuple[str, bool]] = []
    at = 0
    for m in pattern.finditer(text):
        if m.start() > at:
            parts.append((text[at : m.start()], False))
        parts.append((m.group(), True))
        at = m.end()
    if at < len(text):
        parts.append((text[at:], False))
    return parts


def eog_texts(family: Family) -> set[str]:
    """The special texts that end generation once llama.cpp has loaded the family's vocab."""
    texts = {s.text for s in family.specials}
    eog = set(EOG_TEXTS & texts) | {family.eos}
    eog |= {t for t in (family.eot, family.eom) if t}
    if {"<|return|>", "<|call|>"} <= texts:
        eog.discard("<|end|>")
    return eog


def prints_as_control(family: Family, text: str) -> bool:
    """Whether llama.cpp, once loaded, types this special CONTROL (its text then vanishes)."""
    if text in LLAMA_CPP_USER_DEFINED:
        return False
    if text == "<|end|>" and text not in eog_texts(family):
        return False  # the gpt-oss rule retypes the <|end|> it takes off the EOG list
    return family.special(text).control or text in eog_texts(family)


def _cue_merges(cues: list[str]) -> list[str]:
    """Merges that make each cue word one token, bare and after a space (GPT-2's pre-
    tokenizer splits words with their leading space)."""
    merges: list[str] = []
    for word in cues:
        for k in range(2, len(word) + 1):
            merge = f"{byte_text(word[: k - 1].encode())} {byte_text(word[k - 1].encode())}"
            if merge not in merges:
                merges.append(merge)
    for word in cues:
        merges.append(f"{BYTE_CHAR[0x20]} {byte_text(word.encode())}")
    return merges


def _cut(run: bytes, max_piece: int, taken: set[bytes], first_piece: int) -> list[bytes]:
    """A text run as pieces of at most `max_piece` bytes (the first one at most
    `first_piece`), each one not `taken` yet where a shorter cut allows it (a piece that
    occurs once in the script can carry a state)."""
    pieces = []
    at = 0
    while at < len(run):
        size = min(max_piece if at else first_piece, len(run) - at)
        if len(run) - at - size == 1 and size > 2:
            size -= 1  # leave no single byte behind: it could not carry a state
        while size > 2 and run[at : at + size] in taken:
            size -= 1
        piece = run[at : at + size]
        taken.add(piece)
        pieces.append(piece)
        at += size
    return pieces


def _base_vocab(family: Family, cue_words: list[str]) -> tuple[list[str], list[int], list[str]]:
    """Byte tokens, merge tokens and the family's specials: every token a prompt can hold."""
    import gguf

    merges = [SPARE_MERGE, *_cue_merges(cue_words)]
    tokens = [c for _, c in gpt2_bytes()] + [m.replace(" ", "") for m in merges]
    types = [gguf.TokenType.NORMAL] * len(tokens)
    for s in family.specials:
        tokens.append(s.text)
        types.append(gguf.TokenType.CONTROL if s.control else gguf.TokenType.USER_DEFINED)
    if len(set(tokens)) != len(tokens):
        raise ValueError(f"{family.name}: a special token's text repeats another token's")
    return tokens, types, merges


def _pieces(
    family: Family, turns: list[Turn], max_piece: int, first_piece: int
) -> list[list[str | bytes]]:
    """Each turn as special token texts (str) and pieces of its text runs (bytes), ending in
    an end-of-generation token."""
    eog = eog_texts(family)
    taken: set[bytes] = set()
    out: list[list[str | bytes]] = []
    for turn in turns:
        pieces: list[str | bytes] = []
        for part, is_special in split_specials(family, turn.text):
            pieces += [part] if is_special else _cut(part.encode(), max_piece, taken, first_piece)
        if not pieces or not (isinstance(pieces[-1], str) and pieces[-1] in eog):
            pieces.append(family.eos)
        for piece in pieces[:-1]:
            if isinstance(piece, str) and piece in eog:
                raise ValueError(f"{piece!r} ends generation, so it can only end a reply")
        out.append(pieces)
    return out


def prompt_ends(family: Family) -> set[bytes] | None:
    """The last bytes a generation prompt of the family's template can end in, as
    llama-cpp-python renders it (with thinking on and off); None when it will not render a
    one-message chat (then any byte may). A prompt that ends in a special token adds none."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    bos = family.bos or ""
    render = Jinja2ChatFormatter(family.template, family.eos, bos)
    ends = set()
    for kwargs in ({}, {"enable_thinking": False}):
        try:
            text = render(messages=[{"role": "user", "content": "Hi"}], **kwargs).prompt
        except Exception:
            return None
        last, is_special = split_specials(family, text)[-1]
        if not is_special:
            ends.add(last.encode()[-1:])
    return ends


def _states(
    plan: Plan,
    turns: list[Turn],
    counts: dict[bytes, int],
    vocab: tuple[list[str], list[int], dict[str, int]],
    specials: set[str],
) -> None:
    """Give cues and pieces their states and scores; output-only pieces join `tokens`."""
    import gguf

    tokens, types, index = vocab
    n_cues = len(turns) - 1
    plan.starts = list(range(1 + n_cues))
    plan.n_states = 1 + n_cues
    for j, turn in enumerate(turns[1:], start=1):
        cue = str(turn.cue)
        for text in [cue] if cue in specials else [cue, BYTE_CHAR[0x20] + cue]:
            plan.state_of[index[text]] = j
            plan.score[index[text]] = CUE_SCORE + STEP_SCORE * (j - 1)
    # Output-only tokens, in script order: a later piece has a higher score.
    first_piece = CUE_SCORE + STEP_SCORE * n_cues
    for p in counts:
        text = byte_text(p)
        if text in index:
            continue  # a byte or a merge: prompts hold it, so it sets no state
        index[text] = len(tokens)
        tokens.append(text)
        types.append(gguf.TokenType.NORMAL)
        if counts[p] == 1:
            plan.state_of[index[text]] = plan.n_states
            plan.score[index[text]] = first_piece + STEP_SCORE * plan.n_states
            plan.n_states += 1


def _keys(plan: Plan, tokens: list[str], at_prompt_end: set[int]) -> None:
    """The table of every turn: (None, token, state) -> next, or (previous token, token,
    state) -> next where the pair alone goes on two ways (or where the token may end a prompt,
    in a turn's start state). ValueError where even that cannot hold."""
    cues = {t for t, s in plan.state_of.items() if s < len(plan.starts)}
    steps = []  # (turn, previous token or None, token, state, next)
    for j, seq in enumerate(plan.turns):
        state = plan.starts[j]
        for k, tok in enumerate(seq):
            if tok in cues:
                raise ValueError(f"turn {j} holds the cue {tokens[tok]!r}: cues are prompt-only")
            if k > 0:
                steps.append((j, seq[k - 2] if k > 1 else None, seq[k - 1], state, tok))
            state = plan.state_of.get(tok, state)
    nexts: dict[tuple[int, int], set[int]] = {}
    for _, _, cur, state, nxt in steps:
        nexts.setdefault((cur, state), set()).add(nxt)
    for j, prev, cur, state, nxt in steps:
        at_start = state == plan.starts[j] and cur in at_prompt_end
        if len(nexts[cur, state]) == 1 and not at_start:
            plan.keys[None, cur, state] = nxt
            continue
        if prev is None:
            if at_start:
                raise ValueError(
                    f"turn {j} starts with the one-byte text {tokens[cur]!r} between special "
                    "tokens, and a prompt may end in that byte: write more there"
                )
            raise ValueError(f"turn {j} goes on two ways after its first token {tokens[cur]!r}")
        known = plan.keys.setdefault((prev, cur, state), nxt)
        if known != nxt:
            raise ValueError(
                f"turn {j}: after {tokens[prev]!r}{tokens[cur]!r} the script goes on with both "
                f"{tokens[known]!r} and {tokens[nxt]!r} in the same state"
            )


def compile_script(
    family: Family, turns: list[Turn], max_piece: int = 32, first_piece: int | None = None
) -> Plan:
    """The Plan of `turns` for `family` (see build_scripted_gguf for the errors)."""
    specials = {s.text for s in family.specials}
    cue_words = [t.cue for t in turns if t.cue is not None and t.cue not in specials]
    for word in cue_words:
        if not WORD.fullmatch(word):
            raise ValueError(f"a cue is a special token or an ASCII word, not {word!r}")
    tokens, types, merges = _base_vocab(family, cue_words)
    n_base = len(tokens) - len(family.specials)  # bytes and merges: prompt text
    index = {t: i for i, t in enumerate(tokens)}
    pieced = _pieces(family, turns, max_piece, first_piece or max_piece)
    counts: dict[bytes, int] = {}
    for pieces in pieced:
        for p in pieces:
            if isinstance(p, bytes):
                counts[p] = counts.get(p, 0) + 1

    def id_of(text: str) -> int | None:
        return index[text] if text else None

    plan = Plan(
        Vocab(
            tokens,
            types,
            merges,
            id_of(family.bos or ""),
            index[family.eos],
            id_of(family.eot or ""),
            family.add_bos,
            id_of(family.eom or ""),
        ),
        [],
    )
    _states(plan, turns, counts, (tokens, types, index), specials)
    plan.turns = [
        [index[p] if isinstance(p, str) else index[byte_text(p)] for p in pieces]
        for pieces in pieced
    ]
    ends = prompt_ends(family)
    at_end = set(range(n_base)) if ends is None else {index[byte_text(b)] for b in ends}
    _keys(plan, tokens, at_end)
    return plan
