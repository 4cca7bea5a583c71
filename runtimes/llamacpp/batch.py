"""Continuous batching for llama.cpp: concurrent generations share the decode steps of one context.

The engine holds a second llama.cpp context on the already-loaded weights, with one KV
sequence per slot (llama-server's `--parallel`). Each `step()` decodes the next token of every
running generation together with a chunk of the prompts still being read, then samples each
sequence with its own sampler chain (sampling.py: its grammar, penalties and seed included).
Requests queue FIFO for a free slot, and every admitted generation runs to its own end. A
slot's KV cells outlive its generation, so a prompt that starts the same way reads only the
rest (slots.py).

Images (a chat's `Generation.media`): when a sequence's reading reaches an image, mtmd encodes
it and decodes its embeddings into the sequence's cells at the start of a step, apart from the
step's token batch (which then holds the text after it); other sequences wait for that step.
Slots compare prompts by keys, an image's positions by the image's hash, so a second turn
about the same image reuses its cells in any slot, and another image never matches.

One thread drives the engine. In a runner that is the main thread, between its other calls
(`adopt`): llama.cpp's OpenMP team belongs to the thread that drives it, and a second thread
decoding on 2 cores ran at half speed (docs/benchmarks.md). Used in-process without a driver,
the engine starts its own thread.

Speculation (speculation.py): a sequence's drafts, from prompt lookup or from a draft model
with a context of its own (drafter.py, which drafts for every sequence before the step), are
verified in the step beside the others' tokens, as long as their rows are worth what the
engine's steps have shown a row to cost (step_cost.py).

A generation is planned as the serial path's is (generation.py), and its text follows
TokenText's rules (shared with the serial path) for stops, the exact token limit and finish
reasons.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import llama_cpp
from llama_cpp import Llama
from llama_cpp import _internals as internals
from localoip.runtimes.capabilities import Cancel, Emit, TextDelta
from localoip.runtimes.llamacpp import pieces
from localoip.runtimes.llamacpp.decode_step import Step, engine_context
from localoip.runtimes.llamacpp.drafter import Drafter
from localoip.runtimes.llamacpp.generation import Generation, Marking
from localoip.runtimes.llamacpp.sampling import Samplers
from localoip.runtimes.llamacpp.sequence import EngineSequence
from localoip.runtimes.llamacpp.slots import Slots
from localoip.runtimes.llamacpp.speculation import (
    NO_SPECULATION,
    Draw,
    Speculative,
    Speculator,
    speculates,
)
from localoip.runtimes.llamacpp.step_cost import StepCost
from localoip.runtimes.llamacpp.vision import prompt_keys
from localoip.runtimes.llamacpp.waiting import Prepare, Request, Waiting

log = logging.getLogger("localoip")


_Started = tuple[
    Generation,
    internals.LlamaSampler,
    internals.LlamaSampler | None,
    Speculator | None,
    Draw | None,
]


def _stops_at_once(gen: Generation) -> bool:
    """Whether a generation ends before its first token: llama-cpp-python checks the chat
    format's stop tokens against the prompt's last token before the first sample, and stops
    at once when it is one. ValueError for what the engine cannot run."""
    args = gen.args
    if args["mirostat_mode"] or args["logits_processor"] is not None:
        raise ValueError("the batching engine takes no mirostat or logits processors")
    criteria = args["stopping_criteria"]
    return criteria is not None and bool(criteria(gen.prompt, None))


def _ended_at_once(request: Request, gen: Generation) -> bool:
    """End a generation with nothing to generate (max_tokens 0, or a prompt a stop token
    ends): its one delta, then its end; whether it was one."""
    if gen.max_tokens != 0 and not _stops_at_once(gen):
        return False
    finish = "length" if gen.max_tokens == 0 else "stop"
    logprobs = () if gen.logprobs is not None else None
    request.emit(TextDelta(gen.echo, finish, logprobs=logprobs, usage=(len(gen.prompt), 0)))
    request.emit(None)
    return True


def _start(request: Request, samplers: Samplers, speculative: Speculative) -> _Started | None:
    """A request's generation and how it samples: its chain, grammar, and drafts and draws
    when it speculates; None when it ended here, with its error or at once (_ended_at_once),
    its media prompt then closed."""
    gen = None
    try:
        gen = request.prepare()
        if gen.scored is not None:
            raise ValueError("the batching engine does not score prompts (echo with logprobs)")
        if not _ended_at_once(request, gen):
            grammar = samplers.grammar(gen.args)
            lookup = speculative.mode == "ngram"
            # a draft model reads no images: a prompt with them is not drafted for
            drafts = lookup or gen.media is None
            if not drafts or not speculates(speculative.mode, request.speculate, gen.args):
                return gen, samplers.chain(gen.args), grammar, None, None
            speculator = Speculator(speculative.most, lookup)
            if gen.args["temperature"] == 0.0:
                return gen, samplers.chain(gen.args), grammar, speculator, None
            draw = samplers.draw(gen.args)
            return gen, draw.chain, grammar, speculator, draw
    except Exception as exc:
        request.emit(exc)
    if gen is not None and gen.media is not None:
        gen.media.close()
    return None


class BatchEngine:
    """Runs up to `slots` generations at once on `llm`'s weights, one `step()` at a time."""

    def __init__(
        self,
        llm: Llama,
        slots: int,
        batch_tokens: int,
        seed: int = 0,
        speculative: Speculative = NO_SPECULATION,
        draft: internals.LlamaModel | None = None,
    ) -> None:
        self._model = llm._model
        self._pieces = pieces.of(llm)
        self.slots = slots
        self.n_ctx = llm._n_ctx
        self._batch_tokens = max(batch_tokens, slots)
        self._vocab = llama_cpp.llama_model_get_vocab(llm.model)
        self._ctx = engine_context(llm, slots * self.n_ctx, self._batch_tokens, slots)
        self._batch = internals.LlamaBatch(
            n_tokens=self._batch_tokens, embd=0, n_seq_max=1, verbose=False
        )
        self._slots = Slots(llama_cpp.llama_get_memory(self._ctx.ctx), slots)
        self._samplers = Samplers(llm, seed)
        self._waiting = Waiting()
        self._running: list[EngineSequence] = []
        self._speculative = speculative
        self._cost = StepCost()  # what a row of a step costs, for the drafts worth it
        # the draft model's context (speculative = "draft"), which then owns its weights
        self._drafter = None
        if draft is not None:
            self._drafter = Drafter(llm, draft, self.n_ctx, self._batch_tokens, slots)

    @property
    def free_slots(self) -> int:
        return self._slots.free

    @property
    def busy(self) -> bool:
        """Whether requests wait or run, so `step()` has work."""
        return bool(self._waiting or self._running)

    def adopt(self, wake: Callable[[], None]) -> None:
        """Make the calling thread the engine's driver: it calls `step()` while `busy`, and
        `wake()` (called from any thread) tells it that a request arrived or was cancelled."""
        self._waiting.adopt(wake)

    # -- requests ---------------------------------------------------------------------------

    def submit(self, prepare: Prepare, emit: Emit, speculate: bool = True) -> Cancel:
        """Queue a generation; `emit` gets its deltas, then None, or an exception. Its first
        delta and its last say how its prompt was cut to fit the context, if it was.
        `speculate` False keeps it from speculating when the engine does."""
        request = Request(*Marking.of(prepare, emit), speculate=speculate)
        self._waiting.add(request, self._own)
        return lambda: self._waiting.cancel(request)

    def close(self) -> None:
        """End waiting and running requests with an error and free the context; called by
        the driver (or with no other thread stepping the engine)."""
        if not self._waiting.stop():
            self._shutdown()
        self._batch.close()
        self._ctx.close()
        if self._drafter is not None:
            self._drafter.close()

    # -- preparing a request ----------------------------------------------------------------

    def _admit(self, request: Request) -> None:
        """Start a request in a free slot, or end it with its error."""
        started = _start(request, self._samplers, self._speculative)
        if started is None:
            return
        gen, sampler, grammar, speculator, draw = started
        seq, reused = self._slots.take(*prompt_keys(gen.prompt, gen.media))
        sequence = EngineSequence(
            request, seq, gen, self._pieces, sampler, grammar, self._samplers, speculator, draw
        )
        sequence.read = sequence.cached = reused
        self._running.append(sequence)

    # -- driving ----------------------------------------------------------------------------

    def _own(self) -> None:
        """The engine's own thread, when no driver adopted it."""
        try:
            while self._waiting.wait(lambda: self.busy):
                self.step()
        finally:
            self._shutdown()

    def step(self) -> None:
        """Drop cancelled requests, admit waiting ones, read images reached, decode one step."""
        admitted, cancelled = self._waiting.take(self._slots.free, self._running)
        for sequence in cancelled:
            self._release(sequence)
        for request in admitted:
            self._admit(request)
        for s in list(self._running):
            try:
                s.read_images(self._ctx.ctx, self._batch_tokens, self._slots.cached[s.seq])
            except RuntimeError as exc:  # mtmd could not read it: that request fails alone
                self._fail(s, exc)
        if self._running:
            try:
                self._decode()
            except Exception as exc:
                log.exception("batched generation failed")
                for sequence in list(self._running):
                    self._fail(sequence, exc)

    def _decode(self) -> None:
        """Decode one token of every generating sequence (and its draft, when it speculates)
        and a chunk of waiting prompts, then sample every sequence whose next token is now
        known, verifying its draft (whose cells not kept are removed)."""
        bar = self._cost.bar(len(self._running))
        if self._drafter is not None:
            self._drafter.draft_for(self._running, self._slots.cached, self._batch_tokens, bar)
        step = Step(self._batch, self._batch_tokens)
        for s in self._running:
            tokens = s.upcoming()
            if tokens and len(tokens) <= step.room:  # else they wait a step
                cached = self._slots.cached[s.seq]
                cached.extend(tokens)
                drafted = s.draft(cached, step.room - len(tokens), self.n_ctx, bar)
                cached.extend(drafted)
                start = len(s.prompt) + s.text.generated - len(tokens)
                step.add([*tokens, *drafted], start, s.seq, len(tokens) - 1)
                step.outputs.append((s, step.n - 1 - len(drafted), drafted))
        generating = step.n
        for s in self._running:
            if s.read == len(s.prompt) or step.room == 0:
                continue
            end = min(s.read + step.room, s.prompt_end())
            last = end == len(s.prompt)  # its logits start the generation
            step.add(s.prompt[s.read : end], s.read, s.seq, end - s.read - 1 if last else -1)
            self._slots.cached[s.seq].extend(s.keys[s.read : end])
            s.read = end
            if last:
                step.outputs.append((s, step.n - 1, []))
        self._cost.observe(step.n, step.decode(self._ctx.ctx), reading=step.n > generating)
        for s, i, drafted in step.outputs:
            kept = s.verify(self._ctx.ctx, i, drafted, self._advance)
            if kept < len(drafted):
                self._slots.trim(s.seq, len(self._slots.cached[s.seq]) - len(drafted) + kept)

    def _advance(self, s: EngineSequence, token: int) -> None:
        """Take a sampled token: end of generation, stop strings and the limit (TokenText's
        rules, which the serial path follows too); emit the text that is certain."""
        s.next, s.forced = None, ()
        if llama_cpp.llama_vocab_is_eog(self._vocab, token):
            self._finish(s, s.text.end("stop"))
            return
        if s.recorder is not None:
            s.pending.append(s.recorder.take(token))
        text = s.after_token(s.text.add(token))
        if s.text.finish is not None:
            self._finish(s, text)
            return
        if text:
            s.emit(text)
        if len(s.prompt) + s.text.generated >= self.n_ctx:
            self._finish(s, s.text.end("length"))
            return
        s.next = token

    def _finish(self, s: EngineSequence, text: str) -> None:
        self._release(s)  # first, so a caller that sees the end finds the slot free
        usage = (len(s.prompt), s.text.generated)
        ended = {"usage": usage, "stop_sequence": s.text.stop_sequence}
        if s.speculator is not None:
            ended["speculation"] = s.speculator.report()
        last = s.delta(text, finish_reason=s.text.finish, cached_tokens=s.cached, **ended)
        s.request.emit(last or TextDelta("", s.text.finish, **ended))
        s.request.emit(None)

    def _fail(self, s: EngineSequence, exc: BaseException) -> None:
        self._release(s)
        self._slots.forget(s.seq)  # a failed step: trust none of its cells
        if self._drafter is not None:
            self._drafter.forget(s.seq)
        s.request.emit(exc)

    def _release(self, s: EngineSequence) -> None:
        """Free a sequence's sampler and slot; its KV cells stay for a prompt that reuses them."""
        s.close()
        self._running.remove(s)
        self._slots.give_back(s.seq)

    def _shutdown(self) -> None:
        error = RuntimeError("the model was unloaded")
        waiting = self._waiting.drain()
        for s in list(self._running):
            if s.request.cancelled:
                self._release(s)
            else:
                self._fail(s, error)
        for request in waiting:
            request.emit(error)
