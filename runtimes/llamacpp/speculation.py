"""Speculative decoding for the batching engine: prompt-lookup drafts, their adaptive length,
and the acceptance rule that keeps a sampled sequence's distribution the target's.

Prompt lookup (vLLM's ngram proposer, llama.cpp's `--lookup`): the last n tokens of a
sequence (n = 3, then 2) are looked up in everything it holds so far, its prompt and its
text; the tokens that followed an earlier occurrence are the draft. Of the key's latest
occurrences, the one taken is the one whose tokens before it equal the sequence's own for
longest, as in a suffix match: a function's repeated `continue` lines are followed by
different lines, and the one to copy comes after the lines just written. (Taking simply the
latest occurrence lost whole 8-token drafts there: gemma3's 60-line rewrite kept 76 % of its
drafts that way, and 98 % this way.) A draft is at most as long as that match, the key and
the tokens before it: a copy that has run for 20 tokens is trusted for 20 more, a 3-token
coincidence for 3. llama-server's `ngram-simple` gets the same from a 12-token key. An edit,
a rewrite or an answer that quotes its source repeats long runs of its prompt, and those
drafts are accepted whole; free text rarely is.

The engine decodes a sequence's next token and its draft in one step beside the others'
(batch.py), then samples each of those outputs in order as it would have one at a time,
keeping the draft while the samples equal it. Greedy output is the same token for token, with
grammars, penalties, stop strings and logprobs, since each output is sampled exactly as
without speculation, and nothing past the first difference is taken. A sampled sequence
draws with `Draw`, the standard rule: keep a drafted token with probability min(1, p/q), else
draw from the residual max(0, p - q) renormalised, which is p exactly. An n-gram draft is a
point mass q: keep the drafted token with probability p(draft), else draw from p without it;
a draft model's (drafter.py) q is its distribution at the sequence's temperature.

How long a draft is (`DraftLength`) follows what was accepted: it doubles when a draft is
taken whole, shrinks to what was taken when not, and after drafts that gained nothing the
sequence waits ever longer before drafting again. Free text then costs almost nothing. It is
also cut to the tokens worth their rows (step_cost.py): the i-th drafted token is kept with
about the sequence's recent chance a token is kept to the i-th power, and a row is worth it
above the step's `bar`. On a CPU, where a row costs most of what a step does, a sequence that
keeps 70 % of its tokens drafts one at a time or, below the bar, only tries one every
LONGEST_WAIT steps; one that copies its prompt drafts at full length.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import llama_cpp
import numpy as np
from llama_cpp import _internals as internals
from localoip.runtimes.capabilities import Speculation

NGRAMS = (3, 2)  # the lengths of the lookup keys, tried longest first
CANDIDATES = 8  # a key's latest occurrences weighed by the context before them
CONTEXT = 32  # tokens of that context compared, at most
FIRST_DRAFT = 2  # a sequence's first draft length
LONGEST_WAIT = 32  # steps without drafting, at most, after drafts that gained nothing
PRIOR = (4.0, 1.0)  # the kept and missed tokens a sequence starts with: a chance of 0.8
RECENT = 0.7  # the weight of what a draft kept and missed, a draft later


@dataclass(frozen=True, slots=True)
class Speculative:
    """An engine's speculation: `mode` "off", "ngram" or "draft" (options.speculative), and
    `most` draft tokens a step (options.draft_max)."""

    mode: str = "off"
    most: int = 8


NO_SPECULATION = Speculative()


class Ngrams:
    """Where each n-gram of a token history occurred with a token after it."""

    def __init__(self) -> None:
        self._seen: dict[tuple[int, ...], list[int]] = {}  # n-gram -> where the tokens after it are
        self._indexed = 0  # positions of the history indexed so far

    def draft(self, history: Sequence[int], most: int) -> list[int]:
        """Up to `most` tokens that followed an earlier occurrence of the history's last n
        tokens (longest n first): of its latest CANDIDATES occurrences, the one whose tokens
        before it match the history's for longest (the latest of those), and no more tokens
        than matched there (n and those before it); [] when none occurred. Negative keys (an
        image's positions, slots.py) end a draft."""
        self._index(history)
        end = len(history)
        for n in NGRAMS:
            found = self._seen.get(tuple(history[end - n : end])) if end >= n else None
            if found:
                context, at = max(
                    (_context(history, at - n, end - n), at) for at in found[-CANDIDATES:]
                )
                drafted = []
                for token in history[at : min(at + most, at + n + context, end)]:
                    if token < 0:
                        break
                    drafted.append(token)
                return drafted
        return []

    def _index(self, history: Sequence[int]) -> None:
        seen = self._seen
        for p in range(max(self._indexed, 1), len(history)):
            for n in NGRAMS:
                if p >= n:
                    seen.setdefault(tuple(history[p - n : p]), []).append(p)
        self._indexed = max(self._indexed, len(history))


def _context(history: Sequence[int], before: int, end: int) -> int:
    """How many tokens, up to CONTEXT, before position `before` equal those before `end`."""
    same = 0
    while (
        same < CONTEXT
        and before - same > 0
        and history[before - same - 1] == history[end - same - 1]
    ):
        same += 1
    return same


class DraftLength:
    """A sequence's draft length, following its acceptance (see the module's docstring)."""

    def __init__(self, most: int) -> None:
        self.most = most
        self._length = min(FIRST_DRAFT, most)
        self._wait = 0  # steps to skip before the next draft
        self._misses = 0  # drafts in a row that gained nothing
        self._kept, self._missed = PRIOR  # drafted tokens kept and missed, recent ones more

    def now(self, bar: float = 0.0) -> int:
        """How many tokens to draft this step (0: none), when a drafted token is worth its row
        above a chance `bar` of being kept (StepCost.bar); each call is one step."""
        if self._wait:
            self._wait -= 1
            return 0
        worth = self._worth(bar)
        if worth == 0:  # below the bar: try one token now and then, to see if that changed
            self._wait = LONGEST_WAIT - 1
            return 1
        return min(self._length, worth)

    def _worth(self, bar: float) -> int:
        """The most tokens worth drafting: the i-th is kept with about chance ** i."""
        chance = self._kept / (self._kept + self._missed)
        kept, worth = chance, 0
        while worth < self.most and kept > bar:
            worth, kept = worth + 1, kept * chance
        return worth

    def verified(self, drafted: int, accepted: int) -> None:
        """Note a draft of `drafted` tokens of which the first `accepted` were kept."""
        self._kept = self._kept * RECENT + accepted
        self._missed = self._missed * RECENT + (accepted < drafted)
        if accepted == drafted:
            self._length, self._misses = min(self.most, self._length * 2), 0
        elif accepted:
            self._length, self._misses = max(1, accepted), 0
        else:
            self._misses += 1
            self._length = max(1, self._length // 2)
            self._wait = max(self._wait, min(LONGEST_WAIT, 2 ** (self._misses - 1)))

    def idle(self) -> None:
        """The lookup found nothing: wait a step before looking again."""
        self._wait = max(self._wait, 1)


class Speculator:
    """One sequence's drafting: the lookup (or the draft model's proposal), its draft length
    and what it gained."""

    def __init__(self, most: int, lookup: bool = True) -> None:
        self._ngrams = Ngrams() if lookup else None
        self._length = DraftLength(most)
        self._proposed: list[int] = []  # the draft model's tokens for this step
        self._chances: list[np.ndarray] | None = None  # and their q, for a sampled sequence
        self.drafted = 0  # tokens drafted
        self.accepted = 0  # of which were kept
        self.steps = 1  # decode steps that gave its tokens (the first: its prompt's end)

    def wanted(self, room: int, bar: float = 0.0) -> int:
        """With a draft model: how many tokens it should propose this step, at most `room`
        (each call is one step of the draft length's; `bar` as DraftLength.now's)."""
        return min(room, self._length.now(bar)) if room > 0 else 0

    def propose(self, tokens: list[int], chances: list[np.ndarray] | None) -> None:
        """The draft model's proposal for this step, and its q's for a sampled sequence."""
        self._proposed, self._chances = tokens, chances

    def chance(self, j: int) -> np.ndarray | None:
        """The draft model's q at drafted token j; None for a point mass (a lookup's draft)
        or a greedy sequence."""
        return self._chances[j] if self._chances is not None else None

    def draft(self, history: Sequence[int], room: int, bar: float = 0.0) -> list[int]:
        """The tokens to verify after the history (the sequence's keys, its next token
        last), at most `room`; `bar` as DraftLength.now's."""
        self.steps += 1
        if self._ngrams is None:
            drafted, self._proposed = self._proposed[: max(room, 0)], []
            return drafted
        if room <= 0:
            return []
        most = min(room, self._length.now(bar))
        if most <= 0:
            return []
        drafted = self._ngrams.draft(history, most)
        if not drafted:
            self._length.idle()
        return drafted

    def verified(self, drafted: int, accepted: int) -> None:
        if drafted:
            self.drafted += drafted
            self.accepted += accepted
            self._length.verified(drafted, accepted)

    def report(self) -> Speculation:
        return Speculation(self.drafted, self.accepted, self.steps)


@dataclass(slots=True)
class Draw:
    """Sampling a sequence whose chain ends before its draw (Samplers.chain(draw=False)):
    the chain shapes the distribution p (penalties, bias, top-k/p, temperature), and the
    draw, from `rng`, keeps a drafted token d with probability min(1, p(d)/q(d)), else draws
    from the residual max(0, p - q) renormalised: p exactly, whatever q drafted it (q a point
    mass for a lookup's draft; the draft model's distribution at `temperature` for its)."""

    chain: internals.LlamaSampler
    rng: np.random.Generator
    candidates: internals.LlamaTokenDataArray
    temperature: float = 1.0

    def pick(self, logits: np.ndarray, drafted: int | None, q: np.ndarray | None = None) -> int:
        """The token at one output, given its logits, the drafted token there, if any, and
        the distribution q it was drafted from over the whole vocabulary (None: a point mass);
        the chain takes it (its penalties' history)."""
        every = self.candidates
        every.copy_logits(logits)
        llama_cpp.llama_sampler_apply(self.chain.sampler, ctypes.byref(every.candidates))
        size = every.candidates.size
        ids = np.array(every.candidates_data.id[:size])
        values = np.array(every.candidates_data.logit[:size], np.float64)
        p = np.exp(values - values.max())
        p /= p.sum()
        token = None
        if drafted is not None:
            at = np.flatnonzero(ids == drafted)
            chance = float(p[at[0]]) if at.size else 0.0
            if q is None:
                q_ids = np.zeros_like(p)
                q_ids[at] = 1.0
                drafted_q = 1.0
            else:
                q_ids, drafted_q = q[ids], float(q[drafted])
            if self.rng.random() * drafted_q < chance:
                token = drafted
            else:
                residual = np.maximum(p - q_ids, 0.0)
                if residual.sum() > 0.0:
                    p = residual / residual.sum()
        if token is None:
            token = int(ids[self.rng.choice(size, p=p)])
        llama_cpp.llama_sampler_accept(self.chain.sampler, token)
        return token

    def close(self) -> None:
        self.chain.close()


def draw_for(
    chain: internals.LlamaSampler, seed: int, n_vocab: int, temperature: float = 1.0
) -> Draw:
    """A Draw on `chain` (one without its final draw) seeded from `seed`, of a sequence
    sampled at `temperature`."""
    candidates = internals.LlamaTokenDataArray(n_vocab=n_vocab)
    return Draw(chain, np.random.default_rng(seed), candidates, temperature)


def speculates(mode: str, asked: bool, args: dict[str, Any]) -> bool:
    """Whether a sequence drafts: the model's `speculative` is on, the request did not turn
    it off, and, when it samples, it has no seed (a seeded one draws as the serial path does,
    to give its exact text) and no grammar (whose constrained draw is not p's)."""
    if mode == "off" or not asked:
        return False
    greedy = args["temperature"] == 0.0
    return greedy or (args["seed"] is None and args["grammar"] is None)
