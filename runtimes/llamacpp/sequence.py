"""A sequence the batching engine runs: its KV slot, sampler chain, text so far and, when it
speculates, its drafts (speculation.py)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from llama_cpp import _internals as internals
from localoip.runtimes.capabilities import TextDelta, TokenLogprob
from localoip.runtimes.llamacpp.generation import Generation
from localoip.runtimes.llamacpp.pieces import Pieces
from localoip.runtimes.llamacpp.sampling import Bias, Samplers, logit_bias
from localoip.runtimes.llamacpp.speculation import Draw, Speculator
from localoip.runtimes.llamacpp.token_logprobs import LogprobRecorder
from localoip.runtimes.llamacpp.token_text import TokenText
from localoip.runtimes.llamacpp.vision import MediaPrompt, prompt_keys
from localoip.runtimes.llamacpp.waiting import Request


class EngineSequence:
    """An admitted request: its KV sequence, sampler chain and text so far."""

    def __init__(
        self,
        request: Request,
        seq: int,
        gen: Generation,
        pieces: Pieces,
        sampler: internals.LlamaSampler,
        grammar: internals.LlamaSampler | None,
        samplers: Samplers,
        speculator: Speculator | None = None,
        draw: Draw | None = None,
    ) -> None:
        special = gen.special

        def piece(token: int) -> bytes:
            return pieces.piece(token, special)

        self.request = request
        self.seq = seq
        self.prompt = gen.prompt
        self.media: MediaPrompt | None = gen.media  # a prompt's images, read by mtmd
        self.keys = prompt_keys(gen.prompt, gen.media)[0]  # what the slot's cells hold
        self.text = TokenText(piece, gen.max_tokens, gen.stop)
        self.sampler = sampler  # the chain (a Draw's, when there is one)
        self.draw = draw  # a sampled speculative sequence's draws, instead of the chain's
        self.speculator = speculator  # its drafts, when it speculates
        self.grammar = grammar  # checked apart from the chain (see Samplers.sample)
        logprobs = gen.logprobs is not None
        self.recorder = LogprobRecorder(gen.logprobs, piece) if logprobs else None
        # token ids and values, for the logprobs the sampler sees
        self.bias: Bias | None = logit_bias(gen.args) if logprobs else None
        self.pending: list[TokenLogprob] = []  # logprobs of tokens whose text is held
        self.echo = gen.echo  # put before the first text that is emitted
        self.read = 0  # prompt tokens in the KV cache (a reused prefix included)
        self.cached = 0  # of which were there before it came
        self.next: int | None = None  # the sampled token to decode next
        self.forced: tuple[int, ...] = ()  # tokens put in after it (a spent reasoning budget)
        self.reply = gen.reply  # a chat's reader, which splits its deltas
        self._samplers = samplers  # for the grammar of the rest of a reply (after_token)

    def room(self, space: int, n_ctx: int) -> int:
        """How many draft tokens it may verify after its next one: at most `space`, none past
        the token limit or the context, none when forced tokens come next."""
        generated = self.text.generated
        room = min(space, self.text.max_tokens - generated, n_ctx - len(self.prompt) - generated)
        return 0 if self.forced else room - 1

    def draft(self, history: Sequence[int], space: int, n_ctx: int, bar: float) -> list[int]:
        """The draft to verify after the next token (`history`: the keys its cells will hold,
        that token last): at most `space` tokens (room), each worth its row above a chance
        `bar` of being kept (StepCost.bar); [] when it does not speculate."""
        if self.speculator is None:
            return []
        return self.speculator.draft(history, self.room(space, n_ctx), bar)

    def verify(
        self, ctx: Any, i: int, drafted: list[int], advance: Callable[[EngineSequence, int], None]
    ) -> int:
        """Sample the outputs of the last decode from i on, in order, as one at a time, each
        token handed to `advance`: each drafted token is kept while the sample there equals it
        and the generation goes on without forced tokens. How many drafted tokens were kept."""
        kept = 0
        for j in range(len(drafted) + 1):
            if self.recorder is not None:
                self._samplers.record(ctx, i + j, self.recorder, self.bias)
            guess = drafted[j] if j < len(drafted) else None
            q = self.speculator.chance(j) if guess is not None and self.speculator else None
            token = self.pick(ctx, i + j, guess, q)
            advance(self, token)
            if token != guess or self.next is None or self.forced:
                break
            kept += 1
        if drafted and self.speculator is not None:
            self.speculator.verified(len(drafted), kept)
        return kept

    def close(self) -> None:
        """Free its samplers and images."""
        self.sampler.close()
        if self.grammar is not None:
            self.grammar.close()
        if self.media is not None:
            self.media.close()

    def pick(self, ctx: Any, i: int, drafted: int | None, q: np.ndarray | None = None) -> int:
        """The token at output i of the last decode, the drafted one there given with the q
        it was drafted from (a Draw keeps it with min(1, p/q); a greedy or constrained pick
        ignores it)."""
        if self.draw is not None:
            return self.draw.pick(self._samplers.logits(ctx, i), drafted, q)
        return self._samplers.sample(ctx, i, self.sampler, self.grammar)

    def delta(self, text: str, **fields: Any) -> TextDelta | None:
        """The next delta: the echo before the first, and the logprobs held until now; a
        chat's read by its reply reader (None: nothing of it is certain yet)."""
        text, self.echo = self.echo + text, ""
        logprobs = tuple(self.pending) if self.recorder is not None else None
        self.pending = []
        delta = TextDelta(text, logprobs=logprobs, **fields)
        if self.reply is None:
            return delta
        return self.reply.read(delta, self.text.generated)

    def read_images(self, ctx: Any, n_batch: int, cached: list[int]) -> None:
        """Read each image the prompt's reading has reached (the text before it is in the
        cells), whole, into the sequence's cells; RuntimeError when mtmd cannot."""
        for span in self.media.spans if self.media is not None else ():
            if span.start == self.read:
                self.media.read_image(ctx, span, self.seq, n_batch)
                cached.extend(self.keys[span.start : span.end])
                self.read = span.end

    def prompt_end(self) -> int:
        """Where the prompt text read from `read` on ends: its end, or the next image."""
        spans = self.media.spans if self.media is not None else ()
        return next((s.start for s in spans if s.start >= self.read), len(self.prompt))

    def upcoming(self) -> list[int]:
        """The tokens to decode next: the sampled one, then any forced after it."""
        return [self.next, *self.forced] if self.next is not None else []

    def emit(self, text: str) -> None:
        """Emit the next delta, unless none of it is certain yet."""
        delta = self.delta(text)
        if delta is not None:
            self.request.emit(delta)

    def after_token(self, text: str) -> str:
        """A token's text, for a chat read by its reply reader first: emitted, then the
        generation ended where the reader says it may (its one call made), or a spent
        reasoning budget's close marker put in after the token, as if sampled (decoded
        with it). The text left to emit."""
        if self.reply is None or self.text.finish is not None:
            return text
        if text:
            self.emit(text)
        if self.reply.finished:
            return self.text.end("stop")
        forced = self.reply.force()
        if forced and self.grammar is not None and self.reply.after is not None:
            self.grammar.close()  # the rest of the reply follows a grammar of its own
            self.grammar = self._samplers.grammar({"grammar": self.reply.after})
        text = ""
        for token in forced:
            text += self.text.add(token)
            if self.text.finish is not None:
                break
        self.forced = forced
        return text
