"""The draft model of `speculative = "draft"`: a second model, loaded in the same process,
that proposes each speculating sequence's next tokens for the target to verify.

Its weights get a context of their own with one KV sequence per slot of the engine (the same
sequence numbers), holding what the target's cells hold for that slot (its keys, then the
drafted tokens not yet verified). Before a step, `Drafter.propose` brings every speculating
sequence's cells up to its history (the longest prefix any draft sequence holds is kept or
shared, as the engine's slots do, and the rest read in batches), then drafts k tokens each by
k batched decodes over all of them at once. Cells past what the target kept are trimmed on
the next proposal, by the common prefix with the history.

A greedy sequence drafts the draft model's best token; a sampled one draws from q, the draft
model's distribution at the sequence's temperature, and hands q on so that the target keeps
a drafted token with probability min(1, p/q) and else draws from the residual (speculation
`Draw`). Either way the target's output is what it would be without a draft model.

The two models must share a vocabulary: the same number of tokens, the same text of each
token, the same BOS and EOS (`check_vocabulary`), or the model is refused at load.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import llama_cpp
import numpy as np
from llama_cpp import Llama
from llama_cpp import _internals as internals
from localoip.runtimes.llamacpp.decode_step import Step, engine_context
from localoip.runtimes.llamacpp.gguf import model_file
from localoip.runtimes.llamacpp.slots import Slots, common_prefix

if TYPE_CHECKING:
    from localoip.runtimes.llamacpp.sequence import EngineSequence

Chances = list[np.ndarray] | None
"""The draft model's distribution q at each drafted token of a sampled sequence (None for
a greedy one)."""


def vocabulary(model: internals.LlamaModel) -> tuple[int, str, int, int]:
    """A model's vocabulary in brief: its size, a hash over every token's text, its BOS and
    its EOS."""
    vocab = model.vocab
    size = llama_cpp.llama_vocab_n_tokens(vocab)
    texts = hashlib.sha256()
    for token in range(size):
        text = llama_cpp.llama_vocab_get_text(vocab, token) or b""
        texts.update(len(text).to_bytes(4, "little") + text)
    bos, eos = llama_cpp.llama_vocab_bos(vocab), llama_cpp.llama_vocab_eos(vocab)
    return size, texts.hexdigest(), bos, eos


def check_vocabulary(target: internals.LlamaModel, draft: internals.LlamaModel, name: str) -> None:
    """ValueError saying how the draft model `name`'s vocabulary differs from the target's."""
    ours, theirs = vocabulary(target), vocabulary(draft)
    if ours == theirs:
        return
    if ours[0] != theirs[0]:
        why = f"it has {theirs[0]} tokens, this model {ours[0]}"
    elif ours[1] != theirs[1]:
        why = "the texts of their tokens differ"
    else:
        why = f"its BOS and EOS are {theirs[2:]}, this model's {ours[2:]}"
    raise ValueError(
        f"the draft model {name!r} does not share this model's vocabulary ({why}); "
        'speculative = "draft" needs a draft with the same tokenizer'
    )


def open_draft(llm: Llama, path: str, name: str, vocab_only: bool) -> internals.LlamaModel:
    """The draft model `name`'s GGUF at `path` (a file or its folder), loaded as `llm`'s
    weights are (GPU layers, memory mapping) or only its vocabulary; ValueError when its
    vocabulary is not `llm`'s (check_vocabulary)."""
    params = llama_cpp.llama_model_params.from_buffer_copy(llm.model_params)
    params.vocab_only = vocab_only
    model = internals.LlamaModel(path_model=model_file(path), params=params, verbose=False)
    try:
        check_vocabulary(llm._model, model, name)
    except ValueError:
        model.close()
        raise
    return model


@dataclass(slots=True)
class Want:
    """One sequence's draft to make: its KV sequence, its history (the keys its target cells
    will hold this step, its next token last), how many tokens, and for a sampled one its
    temperature and random generator."""

    seq: int
    history: list[int]
    count: int
    temperature: float = 0.0
    rng: np.random.Generator | None = None


class Drafter:
    """The draft model's context, with `slots` KV sequences of `n_ctx` tokens (the target's),
    reading `batch_tokens` at most a decode; it owns the draft model's weights."""

    def __init__(
        self, llm: Llama, model: internals.LlamaModel, n_ctx: int, batch_tokens: int, slots: int
    ) -> None:
        self._model = model
        self._n_ctx = n_ctx  # a sequence's context, the target's
        self._ctx = engine_context(llm, slots * n_ctx, batch_tokens, slots, model)
        self._batch = internals.LlamaBatch(
            n_tokens=batch_tokens, embd=0, n_seq_max=1, verbose=False
        )
        self._size = batch_tokens
        self._cells = Slots(llama_cpp.llama_get_memory(self._ctx.ctx), slots)
        self._n_vocab = llama_cpp.llama_vocab_n_tokens(model.vocab)

    def draft_for(
        self, running: Sequence[EngineSequence], cached: list[list[int]], space: int, bar: float
    ) -> None:
        """Hand this step's drafts to every speculating sequence of the engine's `running`
        (`cached`: the keys each slot's cells hold), each as long as its draft length (with
        `bar`, StepCost.bar) and its room in a step of `space` tokens, made together
        (propose). A sequence still reading its prompt is read as far as the target has read
        it, so that the draft model reads prompts before their first token, as the target
        does."""
        wants, speculating = [], []
        for s in running:
            tokens = s.upcoming()
            if s.speculator is None:
                continue
            if not tokens:
                if 0 < s.read < len(s.prompt):  # drafting starts after the prompt
                    wants.append(Want(s.seq, cached[s.seq][: s.read], 0))
                    speculating.append(s)
                continue
            count = s.speculator.wanted(s.room(space - len(tokens), self._n_ctx), bar)
            s.speculator.propose([], None)
            if count > 0:
                rng, temperature = (s.draw.rng, s.draw.temperature) if s.draw else (None, 0.0)
                wants.append(Want(s.seq, [*cached[s.seq], *tokens], count, temperature, rng))
                speculating.append(s)
        if wants:
            for s, (drafted, chances) in zip(speculating, self.propose(wants), strict=True):
                s.speculator.propose(drafted, chances)

    def propose(self, wants: Sequence[Want]) -> list[tuple[list[int], Chances]]:
        """Each want's draft, in order: its tokens and, for a sampled one, their q's.
        RuntimeError when llama.cpp cannot decode."""
        drafts: list[list[int]] = [[] for _ in wants]
        chances: list[list[np.ndarray]] = [[] for _ in wants]
        reads = []
        for i, want in enumerate(wants):
            start = self._sync(want.seq, want.history)
            reads.append((i, want.history[start:], start))
        while reads:  # bring the cells up to each history, its last token's logits read
            # (but for a want of none: a prompt read)
            step, rest = Step(self._batch, self._size), []
            for i, tokens, start in reads:
                part = tokens[: step.room]
                whole = len(part) == len(tokens)
                drafts_here = whole and wants[i].count > 0
                if part:
                    step.add(part, start, wants[i].seq, len(part) - 1 if drafts_here else -1)
                if drafts_here:
                    step.outputs.append((i, step.n - 1, []))
                elif not whole:
                    rest.append((i, tokens[len(part) :], start + len(part)))
            self._decode_and_pick(step, wants, drafts, chances)
            reads = rest
        while True:  # one more token each, for the drafts that want more
            step = Step(self._batch, self._size)
            for i, want in enumerate(wants):
                drafted = drafts[i]
                if 0 < len(drafted) < want.count and not self._ends(drafted[-1]):
                    step.add([drafted[-1]], len(want.history) + len(drafted) - 1, want.seq, 0)
                    step.outputs.append((i, step.n - 1, []))
            if not step.outputs:
                break
            self._decode_and_pick(step, wants, drafts, chances)
        for want, drafted in zip(wants, drafts, strict=True):
            self._cells.cached[want.seq] = [*want.history, *drafted[:-1]]
        return [
            (d, c if w.rng is not None else None)
            for w, d, c in zip(wants, drafts, chances, strict=True)
        ]

    def forget(self, seq: int) -> None:
        """Drop what sequence `seq`'s cells hold."""
        self._cells.forget(seq)

    def close(self) -> None:
        """Free the context and the draft model's weights."""
        self._batch.close()
        self._ctx.close()
        self._model.close()

    def _ends(self, token: int) -> bool:
        return bool(llama_cpp.llama_vocab_is_eog(self._model.vocab, token))

    def _decode_and_pick(
        self,
        step: Step,
        wants: Sequence[Want],
        drafts: list[list[int]],
        chances: list[list[np.ndarray]],
    ) -> None:
        if step.n:
            step.decode(self._ctx.ctx)
        for i, at, _ in step.outputs:
            pointer = llama_cpp.llama_get_logits_ith(self._ctx.ctx, at)
            logits = np.ctypeslib.as_array(pointer, shape=(self._n_vocab,))
            want = wants[i]
            if want.rng is None:
                drafts[i].append(int(np.argmax(logits)))
                continue
            scaled = logits.astype(np.float64) / max(want.temperature, 1e-6)
            q = np.exp(scaled - scaled.max())
            q /= q.sum()
            drafts[i].append(int(want.rng.choice(self._n_vocab, p=q)))
            chances[i].append(q)

    def _sync(self, seq: int, history: list[int]) -> int:
        """Make sequence `seq`'s cells hold the longest prefix of the history (but its last
        token, read again for its logits) that its own cells or another sequence's hold,
        shared from there; how many positions they hold."""
        cells, limit = self._cells, len(history) - 1
        own = common_prefix(cells.cached[seq], history[:limit])
        best, source = own, seq
        for other, cached in enumerate(cells.cached):
            n = common_prefix(cached, history[:limit]) if other != seq else 0
            if n > best:
                best, source = n, other
        if source == seq:
            cells.trim(seq, own)
            return own
        cells.forget(seq)
        mem = llama_cpp.llama_get_memory(self._ctx.ctx)
        llama_cpp.llama_memory_seq_cp(mem, source, seq, 0, best)
        cells.cached[seq] = history[:best]
        return best
