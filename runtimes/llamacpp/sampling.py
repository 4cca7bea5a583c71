"""Sampling for the batching engine: each sequence's chain as llama-cpp-python builds it
(bias, penalties, top-k/p, temperature, seed), its grammar checked apart, and the logprobs
the chain sees."""

from __future__ import annotations

import ctypes
import random
from typing import Any

import llama_cpp
import numpy as np
from llama_cpp import Llama
from llama_cpp import _internals as internals
from localoip.runtimes.llamacpp.speculation import Draw, draw_for
from localoip.runtimes.llamacpp.token_logprobs import LogprobRecorder

Bias = tuple[np.ndarray, np.ndarray]
"""Token ids and the values logit_bias adds to them."""


def logit_bias(args: dict[str, Any]) -> Bias | None:
    """The `_create_completion` arguments' logit_bias as arrays; None when there is none."""
    if not args["logit_bias"]:
        return None
    pairs = {int(k): float(v) for k, v in args["logit_bias"].items()}
    return np.array(list(pairs), np.intc), np.array(list(pairs.values()), np.single)


SHORTLIST = 64
"""Greedy under a grammar, when the chain's pick is refused: the best tokens the grammar is
asked about before the whole vocabulary."""


class Chain(internals.LlamaSampler):
    """A sequence's sampler chain; `greedy` when it picks the best token (temperature 0)."""

    greedy = False


class Samplers:
    """Builds sampler chains for `llm`'s vocabulary and samples the outputs of a context."""

    def __init__(self, llm: Llama, seed: int = 0) -> None:
        self._llm = llm
        self._model = llm._model
        self._n_vocab = llm.n_vocab()
        self._seed = seed or llama_cpp.LLAMA_DEFAULT_SEED
        # candidates for grammar-constrained sampling: the whole vocabulary, and one token
        self._candidates = internals.LlamaTokenDataArray(n_vocab=self._n_vocab)
        self._one = internals.LlamaTokenDataArray(n_vocab=1)
        self._few = internals.LlamaTokenDataArray(n_vocab=min(SHORTLIST, self._n_vocab))

    def chain(self, args: dict[str, Any], draw: bool = True) -> Chain:
        """The chain `Llama._init_sampler` builds, with logit_bias as llama.cpp's own sampler,
        but without the grammar: that one is `grammar`'s, checked apart. Without `draw`, it
        stops before its final greedy pick or random draw (for a Draw's)."""
        seed = args["seed"]
        self._seed = seed if seed is not None else random.Random(self._seed).randint(0, 2**32)
        chain = Chain()
        if args["logit_bias"]:
            bias = {int(k): float(v) for k, v in args["logit_bias"].items()}
            chain.add_logit_bias(self._n_vocab, bias)
        chain.add_penalties(
            n_vocab=self._n_vocab,
            penalty_last_n=self._llm.last_n_tokens_size,
            penalty_repeat=args["repeat_penalty"],
            penalty_freq=args["frequency_penalty"],
            penalty_present=args["presence_penalty"],
        )
        temp = args["temperature"]
        if temp == 0.0:
            if draw:
                chain.add_greedy()
                chain.greedy = True
            return chain
        if temp > 0.0:
            chain.add_top_k(args["top_k"])
            chain.add_typical(args["typical_p"], 1)
            chain.add_top_p(args["top_p"], 1)
            chain.add_min_p(args["min_p"], 1)
            chain.add_temp(temp)
        if draw:
            chain.add_dist(self._seed)
        return chain

    def draw(self, args: dict[str, Any]) -> Draw:
        """A sampled sequence's speculative draw (speculation.Draw): its chain without the
        final draw, and a generator seeded as that draw would be."""
        chain = self.chain(args, draw=False)
        return draw_for(chain, self._seed, self._n_vocab, args["temperature"])

    def grammar(self, args: dict[str, Any]) -> internals.LlamaSampler | None:
        """The arguments' grammar as a sampler of its own; None without one."""
        if args["grammar"] is None:
            return None
        grammar = internals.LlamaSampler()
        grammar.add_grammar(self._model, args["grammar"])
        return grammar

    def logits(self, ctx: Any, i: int) -> np.ndarray:
        """The logits at output i of the last decode (a view of llama.cpp's buffer)."""
        pointer = llama_cpp.llama_get_logits_ith(ctx, i)
        return np.ctypeslib.as_array(pointer, shape=(self._n_vocab,))

    def sample(
        self,
        ctx: Any,
        i: int,
        chain: internals.LlamaSampler,
        grammar: internals.LlamaSampler | None,
    ) -> int:
        """The token the chain picks at output i of the last decode, under the grammar if any."""
        if grammar is None:
            return llama_cpp.llama_sampler_sample(chain.sampler, ctx, i)
        greedy = isinstance(chain, Chain) and chain.greedy
        return self._constrained(ctx, i, chain.sampler, grammar.sampler, greedy)

    def _constrained(self, ctx: Any, i: int, chain: Any, grammar: Any, greedy: bool) -> int:
        """Sample output i under a grammar, as llama.cpp's common_sampler_sample does: the
        chain samples from every token, and only its pick is checked against the grammar;
        just when the grammar rejects it does the grammar filter the whole vocabulary before
        the chain samples again. Filtering every token by a JSON grammar took about ten
        times a decode step of SmolLM2-135M; the pick is the constrained one all the same
        (greedy: the best allowed token; sampled: the constrained distribution, since a
        rejected draw is redrawn from the allowed tokens alone). A greedy chain whose pick
        is refused asks the grammar about its SHORTLIST best tokens first (_best_allowed):
        the best allowed token is among them whenever any of them is allowed."""
        logits = self.logits(ctx, i)
        every, one = self._candidates, self._one
        every.copy_logits(logits)
        llama_cpp.llama_sampler_apply(chain, ctypes.byref(every.candidates))
        token = int(every.candidates_data.id[every.candidates.selected])
        one.copy_logits(np.zeros(1, np.single))
        one.candidates_data.id[0] = token
        llama_cpp.llama_sampler_apply(grammar, ctypes.byref(one.candidates))
        if one.candidates_data.logit[0] == -np.inf:
            allowed = self._best_allowed(grammar) if greedy else None
            token = allowed if allowed is not None else self._every_allowed(logits, chain, grammar)
        llama_cpp.llama_sampler_accept(grammar, token)
        llama_cpp.llama_sampler_accept(chain, token)
        return token

    def _best_allowed(self, grammar: Any) -> int | None:
        """The best token the grammar allows among the SHORTLIST best of the whole vocabulary
        as the chain scored it (penalties and bias applied, ties to the lower id as llama.cpp's
        greedy sampler breaks them); None when it allows none of those."""
        data, few = self._candidates.candidates_data, self._few
        n = few.n_vocab
        top = np.argpartition(data.logit, -n)[-n:]
        top = top[np.lexsort((data.id[top], -data.logit[top]))]
        few.candidates_data.id[:] = data.id[top]
        few.candidates_data.logit[:] = data.logit[top]
        few.candidates.size, few.candidates.sorted = n, False
        llama_cpp.llama_sampler_apply(grammar, ctypes.byref(few.candidates))
        allowed = few.candidates_data.logit[:n] != -np.inf
        return int(few.candidates_data.id[int(np.argmax(allowed))]) if allowed.any() else None

    def _every_allowed(self, logits: np.ndarray, chain: Any, grammar: Any) -> int:
        """The chain's pick among every token the grammar allows."""
        every = self._candidates
        every.copy_logits(logits)
        llama_cpp.llama_sampler_apply(grammar, ctypes.byref(every.candidates))
        llama_cpp.llama_sampler_apply(chain, ctypes.byref(every.candidates))
        return int(every.candidates_data.id[every.candidates.selected])

    def record(self, ctx: Any, i: int, recorder: LogprobRecorder, bias: Bias | None) -> None:
        """Note the logprobs the chain will see at output i (logit_bias applied)."""
        logits = self.logits(ctx, i)
        if bias is not None:
            logits = logits.copy()
            logits[bias[0]] += bias[1]
        recorder(None, logits)
