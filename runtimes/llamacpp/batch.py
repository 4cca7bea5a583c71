"""Continuous batching for llama.cpp: concurrent generations share the decode steps of one context.

The engine holds a second llama.cpp context on the already-loaded weights, with one KV
sequence per slot (llama-server's `--parallel`). Each `step()` decodes the next token of every
running generation together with a chunk of the prompts still being read, then samples each
sequence with its own sampler chain (its grammar, penalties and seed included). Requests queue
FIFO for a free slot, and every admitted generation runs to its own end.

Prefix reuse (llama-server's prompt cache, vLLM's prefix caching): a slot keeps its KV cells
after its generation ends, and the engine remembers which tokens they hold. A new prompt takes
the longest prefix any slot holds, running ones included: in the unified KV cache a cell can
belong to several sequences, so `llama_memory_seq_cp` shares the prefix without copying it.
Only the rest of the prompt is read, so turn 5 of a chat does not re-read turns 1 to 4.

One thread drives the engine. In a runner that is the main thread, between its other calls
(`adopt`): llama.cpp's OpenMP team belongs to the thread that drives it, and a second thread
decoding on 2 cores ran at half speed (docs/benchmarks.md). Used in-process without a driver,
the engine starts its own thread.

Generations match llama-cpp-python's: `completion_arguments` asks `Llama.create_chat_completion`
and `Llama.create_completion` themselves for the arguments they would generate with (see
`_Recorder`), so prompts, stop strings and sampling defaults are the serial path's; `plan`
turns them into a `Generation` both paths run, with TokenText's rules (shared with the serial
path) for stops, the exact token limit and finish reasons, and LogprobRecorder's logprobs.
"""

from __future__ import annotations

import ctypes
import logging
import random
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import llama_cpp
import numpy as np
from llama_cpp import Llama
from llama_cpp import _internals as internals
from llama_cpp._utils import suppress_stdout_stderr
from localoip.runtimes.capabilities import Cancel, Emit, InputError, TextDelta, TokenLogprob
from localoip.runtimes.llamacpp.token_logprobs import LogprobRecorder
from localoip.runtimes.llamacpp.token_text import TokenText

log = logging.getLogger("localoip")


class _Captured(Exception):
    def __init__(self, kwargs: dict[str, Any]) -> None:
        self.kwargs = kwargs


class _Recorder:
    """Stands in for the Llama in its own create_* methods, to learn what they would pass to
    `_create_completion` (the rendered and tokenized chat prompt, the chat format's stop
    strings, every default) without touching the Llama's context: only its chat handlers
    and its tokenizer, which reads the shared vocabulary, are used."""

    def __init__(self, llm: Llama) -> None:
        self.chat_handler = llm.chat_handler
        self._chat_handlers = llm._chat_handlers
        self.chat_format = llm.chat_format
        self.tokenize = llm.tokenize
        self.verbose = False

    def create_completion(self, *args: Any, **kwargs: Any) -> Any:
        return Llama.create_completion(self, *args, **kwargs)  # type: ignore[arg-type]

    def _create_completion(self, **kwargs: Any) -> Any:
        raise _Captured(kwargs)


def completion_arguments(llm: Llama, chat: bool, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The `_create_completion` arguments that `llm.create_chat_completion(**kwargs)` (chat) or
    `llm.create_completion(**kwargs)` would generate with: the prompt rendered by the model's
    chat format and tokenized, its stop strings, and every default. Nothing is generated."""
    method = Llama.create_chat_completion if chat else Llama.create_completion
    try:
        method(_Recorder(llm), **kwargs)  # type: ignore[arg-type]
    except _Captured as captured:
        return captured.kwargs
    raise RuntimeError("the chat handler did not ask for a completion")


def common_prefix(a: Sequence[int] | np.ndarray, b: Sequence[int]) -> int:
    """How many leading tokens two token sequences share."""
    n = min(len(a), len(b))
    if n == 0:
        return 0
    same = np.asarray(a[:n], np.intc) == np.asarray(b[:n], np.intc)
    return n if same.all() else int(np.argmin(same))


def prompt_tokens(llm: Llama, prompt: str | list[int], suffix: str | None = None) -> list[int]:
    """A `_create_completion` prompt as tokens. With a suffix, the model's fill-in-the-middle
    layout, as llama-server's infill builds it: [bos] FIM_PRE prompt FIM_SUF suffix FIM_MID.

    Raises InputError (param "suffix") when the model has no fill-in-the-middle tokens."""
    model = llm._model
    sep = model.token_sep()
    bos = [model.token_cls() if model.token_cls() != -1 else model.token_bos()]
    eos = [sep if sep != -1 else model.token_eos()]
    if not model.add_bos_token() or bos == [-1]:
        bos = []
    if not model.add_eos_token() and sep == -1:
        eos = []
    if suffix is not None:
        fim = model.token_prefix(), model.token_suffix(), model.token_middle()
        if -1 in fim:
            raise InputError(
                "this model has no fill-in-the-middle tokens, so it cannot take a suffix",
                "suffix",
            )
        text = llm.tokenize(prompt.encode(), add_bos=False) if isinstance(prompt, str) else prompt
        after = llm.tokenize(suffix.encode(), add_bos=False) if suffix else []
        return [*bos, fim[0], *text, fim[1], *after, fim[2]]
    if not isinstance(prompt, str):
        return list(prompt)
    return bos + llm.tokenize(prompt.encode(), add_bos=False, special=True) + eos


@dataclass(frozen=True, slots=True)
class Generation:
    """One generation, ready for either path (the engine, or SerialGenerator)."""

    args: dict[str, Any]  # `_create_completion` arguments: sampling, grammar, seed, criteria
    prompt: list[int]
    max_tokens: int  # resolved: never past the context
    stop: list[str]
    logprobs: int | None = None  # top alternatives per token, when logprobs are asked for
    special: bool = False  # keep the text of control tokens (tool-call markers)
    echo: str = ""  # text put before the generated text (a completion's `echo`)


def plan(
    llm: Llama,
    args: dict[str, Any],
    param: str,
    logprobs: int | None = None,
    special: bool = False,
) -> Generation:
    """A Generation from `_create_completion` arguments. Raises InputError (code
    context_length_exceeded) for a prompt that fills the context, or for a suffix the model
    cannot take."""
    prompt = prompt_tokens(llm, args["prompt"], args["suffix"])
    n_ctx = llm.n_ctx()
    if len(prompt) >= n_ctx:
        raise InputError(
            f"Requested tokens ({len(prompt)}) exceed context window of {n_ctx}",
            param,
            "context_length_exceeded",
        )
    max_tokens = args["max_tokens"]
    if max_tokens is None or max_tokens <= 0:
        max_tokens = n_ctx
    stop = args["stop"]
    stop = stop if isinstance(stop, list) else [stop] if isinstance(stop, str) else []
    echo = ""
    if args["echo"]:
        text = args["prompt"]
        echo = text if isinstance(text, str) else llm.detokenize(text).decode(errors="ignore")
    return Generation(
        args, prompt, min(max_tokens, n_ctx - len(prompt)), stop, logprobs, special, echo
    )


Prepare = Callable[[], Generation]
"""Builds a request's Generation on the engine's thread; may raise InputError."""


class _Request:
    """A queued or running generation."""

    def __init__(self, prepare: Prepare, emit: Emit) -> None:
        self.prepare = prepare
        self._emit = emit
        self.cancelled = False

    def emit(self, item: TextDelta | BaseException | None) -> None:
        """Hand an item to the caller, unless it has cancelled: then it hears nothing more."""
        if not self.cancelled:
            self._emit(item)


class _Sequence:
    """An admitted request: its KV sequence, sampler chain and text so far."""

    def __init__(
        self,
        request: _Request,
        seq: int,
        gen: Generation,
        text: TokenText,
        sampler: internals.LlamaSampler,
        grammar: internals.LlamaSampler | None,
        recorder: LogprobRecorder | None,
        bias: tuple[np.ndarray, np.ndarray] | None,
    ) -> None:
        self.request = request
        self.seq = seq
        self.prompt = gen.prompt
        self.text = text
        self.sampler = sampler
        self.grammar = grammar  # checked apart from the chain (see BatchEngine._constrained)
        self.recorder = recorder
        self.bias = bias  # token ids and values, for the logprobs the sampler sees
        self.pending: list[TokenLogprob] = []  # logprobs of tokens whose text is held
        self.echo = gen.echo  # put before the first text that is emitted
        self.read = 0  # prompt tokens in the KV cache (a reused prefix included)
        self.cached = 0  # of which were there before it came
        self.next: int | None = None  # the sampled token to decode next

    def delta(self, text: str, **fields: Any) -> TextDelta:
        """The next delta: the echo before the first, and the logprobs held until now."""
        text, self.echo = self.echo + text, ""
        logprobs = tuple(self.pending) if self.recorder is not None else None
        self.pending = []
        return TextDelta(text, logprobs=logprobs, **fields)


class BatchEngine:
    """Runs up to `slots` generations at once on `llm`'s weights, one `step()` at a time."""

    def __init__(self, llm: Llama, slots: int, batch_tokens: int, seed: int = 0) -> None:
        self._llm = llm
        self._model = llm._model
        self.slots = slots
        self.n_ctx = llm._n_ctx
        self._n_vocab = llm.n_vocab()
        self._batch_tokens = max(batch_tokens, slots)
        self._seed = seed or llama_cpp.LLAMA_DEFAULT_SEED
        self._vocab = llama_cpp.llama_model_get_vocab(llm.model)
        # The serial context's settings (threads, attention, KV types) so the numbers agree;
        # the KV cache holds every slot at the full context, so no sequence is ever cut short.
        params = llama_cpp.llama_context_params.from_buffer_copy(llm.context_params)
        params.n_ctx = slots * self.n_ctx
        params.n_batch = params.n_ubatch = self._batch_tokens
        params.n_seq_max = slots
        # Every step is a batch; use the model's `threads` for them, not Llama's all-cores
        # default for prompt batches, which contends with the serial path and other models.
        params.n_threads_batch = params.n_threads
        params.kv_unified = True
        with suppress_stdout_stderr(disable=False):  # llama.cpp's notes, as Llama's own load
            self._ctx = internals.LlamaContext(model=self._model, params=params, verbose=False)
        self._mem = llama_cpp.llama_get_memory(self._ctx.ctx)
        self._batch = internals.LlamaBatch(
            n_tokens=self._batch_tokens, embd=0, n_seq_max=1, verbose=False
        )
        self._free = list(range(slots - 1, -1, -1))
        # the tokens each sequence's KV cells hold, from position 0; kept after a generation
        # ends, for the next prompt that starts the same way
        self._cached: list[list[int]] = [[] for _ in range(slots)]
        self._last_used = [0] * slots  # when each slot was last taken, for least-recently-used
        self._taken = 0
        self._queue: deque[_Request] = deque()
        self._running: list[_Sequence] = []
        self._cond = threading.Condition()
        self._closing = False
        self._wake: Callable[[], None] | None = None  # the driver's, once one has adopted it
        self._thread: threading.Thread | None = None
        # candidates for grammar-constrained sampling: the whole vocabulary, and one token
        self._candidates = internals.LlamaTokenDataArray(n_vocab=self._n_vocab)
        self._one = internals.LlamaTokenDataArray(n_vocab=1)

    @property
    def free_slots(self) -> int:
        return len(self._free)

    @property
    def busy(self) -> bool:
        """Whether requests wait or run, so `step()` has work."""
        return bool(self._queue or self._running)

    def adopt(self, wake: Callable[[], None]) -> None:
        """Make the calling thread the engine's driver: it calls `step()` while `busy`, and
        `wake()` (called from any thread) tells it that a request arrived or was cancelled."""
        self._wake = wake

    # -- requests ---------------------------------------------------------------------------

    def submit(self, prepare: Prepare, emit: Emit) -> Cancel:
        """Queue a generation; `emit` gets its deltas, then None, or an exception."""
        request = _Request(prepare, emit)
        with self._cond:
            if self._closing:
                raise RuntimeError("the batching engine is closed")
            self._queue.append(request)
            if self._wake is None and self._thread is None:
                self._thread = threading.Thread(target=self._own, name="llama-batch", daemon=True)
                self._thread.start()
            self._cond.notify()
        self._notify()

        def cancel() -> None:
            with self._cond:
                request.cancelled = True
                self._cond.notify()
            self._notify()

        return cancel

    def _notify(self) -> None:
        if self._wake is not None:
            self._wake()

    def close(self) -> None:
        """End waiting and running requests with an error and free the context; called by
        the driver (or with no other thread stepping the engine)."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join()
        else:
            self._shutdown()
        self._batch.close()
        self._ctx.close()

    # -- preparing a request ----------------------------------------------------------------

    def _sampler(self, args: dict[str, Any]) -> internals.LlamaSampler:
        """The chain `Llama._init_sampler` builds, with logit_bias as llama.cpp's own sampler,
        but without the grammar: that one is `_grammar`'s, checked apart."""
        seed = args["seed"]
        self._seed = seed if seed is not None else random.Random(self._seed).randint(0, 2**32)
        chain = internals.LlamaSampler()
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
        if temp < 0.0:
            chain.add_dist(self._seed)
        elif temp == 0.0:
            chain.add_greedy()
        else:
            chain.add_top_k(args["top_k"])
            chain.add_typical(args["typical_p"], 1)
            chain.add_top_p(args["top_p"], 1)
            chain.add_min_p(args["min_p"], 1)
            chain.add_temp(temp)
            chain.add_dist(self._seed)
        return chain

    def _slot(self, prompt: list[int]) -> tuple[int, int]:
        """Take a free slot for a prompt; also how many of its tokens the slot's KV now holds.

        The longest prefix any sequence holds is used, leaving at least the prompt's last token
        to read (its logits start the generation). The slot holding it is taken when free;
        otherwise the least recently used free slot, and the prefix is shared into it."""
        limit = len(prompt) - 1
        reused, source = 0, -1
        for seq, cached in enumerate(self._cached):
            n = common_prefix(cached, prompt[:limit])
            if n > reused:
                reused, source = n, seq
        free = self._free
        seq = source if source in free else min(free, key=self._last_used.__getitem__)
        self._free.remove(seq)
        self._taken += 1
        self._last_used[seq] = self._taken
        if seq == source:
            llama_cpp.llama_memory_seq_rm(self._mem, seq, reused, -1)
        else:
            llama_cpp.llama_memory_seq_rm(self._mem, seq, -1, -1)
            if reused:
                llama_cpp.llama_memory_seq_cp(self._mem, source, seq, 0, reused)
        self._cached[seq] = prompt[:reused]
        return seq, reused

    def _grammar(self, args: dict[str, Any]) -> internals.LlamaSampler | None:
        if args["grammar"] is None:
            return None
        grammar = internals.LlamaSampler()
        grammar.add_grammar(self._model, args["grammar"])
        return grammar

    def _admit(self, request: _Request) -> None:
        """Start a request in a free slot, or end it with its error."""
        try:
            gen = request.prepare()
            args = gen.args
            if args["mirostat_mode"] or args["logits_processor"] is not None:
                raise ValueError("the batching engine takes no mirostat or logits processors")
            criteria = args["stopping_criteria"]
            if criteria is not None and criteria(gen.prompt, None):
                # llama-cpp-python checks the chat format's stop tokens against the prompt's
                # last token before the first sample, and stops at once when it is one.
                request.emit(TextDelta(gen.echo, "stop", usage=(len(gen.prompt), 0)))
                request.emit(None)
                return
            grammar = self._grammar(args)
            sampler = self._sampler(args)
        except Exception as exc:
            request.emit(exc)
            return
        special = gen.special
        model = self._model

        def piece(token: int) -> bytes:
            return model.detokenize([token], special=special)

        recorder = bias = None
        if gen.logprobs is not None:
            recorder = LogprobRecorder(gen.logprobs, piece)
            if args["logit_bias"]:
                pairs = {int(k): float(v) for k, v in args["logit_bias"].items()}
                bias = np.array(list(pairs), np.intc), np.array(list(pairs.values()), np.single)
        text = TokenText(piece, gen.max_tokens, gen.stop)
        seq, reused = self._slot(gen.prompt)
        sequence = _Sequence(request, seq, gen, text, sampler, grammar, recorder, bias)
        sequence.read = sequence.cached = reused
        self._running.append(sequence)

    # -- driving ----------------------------------------------------------------------------

    def _own(self) -> None:
        """The engine's own thread, when no driver adopted it."""
        try:
            while True:
                with self._cond:
                    while not (self._closing or self.busy):
                        self._cond.wait()
                    if self._closing:
                        return
                self.step()
        finally:
            self._shutdown()

    def step(self) -> None:
        """Drop cancelled requests, admit waiting ones to free slots, and decode one step."""
        with self._cond:
            for request in [r for r in self._queue if r.cancelled]:
                self._queue.remove(request)
            cancelled = [s for s in self._running if s.request.cancelled]
            admitted = []
            while self._queue and len(admitted) < len(self._free):
                admitted.append(self._queue.popleft())
        for sequence in cancelled:
            self._release(sequence)
        for request in admitted:
            self._admit(request)
        if self._running:
            try:
                self._decode()
            except Exception as exc:
                log.exception("batched generation failed")
                for sequence in list(self._running):
                    self._fail(sequence, exc)

    def _decode(self) -> None:
        """Decode one token of every generating sequence and a chunk of waiting prompts,
        then sample every sequence whose next token is now known."""
        batch = self._batch.batch
        n = 0
        outputs: list[tuple[_Sequence, int]] = []

        def add(token: int, pos: int, seq: int, logits: bool) -> None:
            nonlocal n
            batch.token[n], batch.pos[n], batch.seq_id[n][0] = token, pos, seq
            batch.n_seq_id[n], batch.logits[n] = 1, logits
            n += 1

        for s in self._running:
            if s.next is not None:
                outputs.append((s, n))
                add(s.next, len(s.prompt) + s.text.generated - 1, s.seq, True)
                self._cached[s.seq].append(s.next)
        for s in self._running:
            budget = self._batch_tokens - n
            if s.read == len(s.prompt) or budget == 0:
                continue
            chunk = s.prompt[s.read : s.read + budget]
            for i, token in enumerate(chunk):
                add(token, s.read + i, s.seq, False)
            self._cached[s.seq].extend(chunk)
            s.read += len(chunk)
            if s.read == len(s.prompt):
                batch.logits[n - 1] = True
                outputs.append((s, n - 1))
        batch.n_tokens = n
        code = llama_cpp.llama_decode(self._ctx.ctx, batch)
        if code != 0:
            raise RuntimeError(f"llama_decode returned {code}")
        ctx = self._ctx.ctx
        for s, i in outputs:
            if s.recorder is not None:
                self._record(s, i)
            if s.grammar is None:
                token = llama_cpp.llama_sampler_sample(s.sampler.sampler, ctx, i)
            else:
                token = self._constrained(s, i)
            self._advance(s, token)

    def _constrained(self, s: _Sequence, i: int) -> int:
        """Sample output i under the sequence's grammar, as llama.cpp's common_sampler_sample
        does: the chain samples from every token, and only its pick is checked against the
        grammar; just when the grammar rejects it does the grammar filter the whole
        vocabulary before the chain samples again. Filtering every token by a JSON grammar
        took about ten times a decode step of SmolLM2-135M; the pick is the constrained one
        all the same (greedy: the best allowed token; sampled: the constrained distribution,
        since a rejected draw is redrawn from the allowed tokens alone)."""
        assert s.grammar is not None
        pointer = llama_cpp.llama_get_logits_ith(self._ctx.ctx, i)
        logits = np.ctypeslib.as_array(pointer, shape=(self._n_vocab,))
        chain, grammar = s.sampler.sampler, s.grammar.sampler
        every, one = self._candidates, self._one
        every.copy_logits(logits)
        llama_cpp.llama_sampler_apply(chain, ctypes.byref(every.candidates))
        token = int(every.candidates_data.id[every.candidates.selected])
        one.copy_logits(np.zeros(1, np.single))
        one.candidates_data.id[0] = token
        llama_cpp.llama_sampler_apply(grammar, ctypes.byref(one.candidates))
        if one.candidates_data.logit[0] == -np.inf:
            every.copy_logits(logits)
            llama_cpp.llama_sampler_apply(grammar, ctypes.byref(every.candidates))
            llama_cpp.llama_sampler_apply(chain, ctypes.byref(every.candidates))
            token = int(every.candidates_data.id[every.candidates.selected])
        llama_cpp.llama_sampler_accept(grammar, token)
        llama_cpp.llama_sampler_accept(chain, token)
        return token

    def _record(self, s: _Sequence, i: int) -> None:
        """Note the logprobs the sampler will see at output i (logit_bias applied)."""
        assert s.recorder is not None
        pointer = llama_cpp.llama_get_logits_ith(self._ctx.ctx, i)
        logits = np.ctypeslib.as_array(pointer, shape=(self._n_vocab,))
        if s.bias is not None:
            logits = logits.copy()
            logits[s.bias[0]] += s.bias[1]
        s.recorder(None, logits)

    def _advance(self, s: _Sequence, token: int) -> None:
        """Take a sampled token: end of generation, stop strings and the limit (TokenText's
        rules, which the serial path follows too); emit the text that is certain."""
        s.next = None
        if llama_cpp.llama_vocab_is_eog(self._vocab, token):
            self._finish(s, s.text.end("stop"))
            return
        if s.recorder is not None:
            s.pending.append(s.recorder.take(token))
        text = s.text.add(token)
        if s.text.finish is not None:
            self._finish(s, text)
            return
        if text:
            s.request.emit(s.delta(text))
        if len(s.prompt) + s.text.generated >= self.n_ctx:
            self._finish(s, s.text.end("length"))
            return
        s.next = token

    def _finish(self, s: _Sequence, text: str) -> None:
        self._release(s)  # first, so a caller that sees the end finds the slot free
        usage = (len(s.prompt), s.text.generated)
        s.request.emit(
            s.delta(text, finish_reason=s.text.finish, usage=usage, cached_tokens=s.cached)
        )
        s.request.emit(None)

    def _fail(self, s: _Sequence, exc: BaseException) -> None:
        self._release(s)
        llama_cpp.llama_memory_seq_rm(self._mem, s.seq, -1, -1)  # a failed step: trust none
        self._cached[s.seq] = []
        s.request.emit(exc)

    def _release(self, s: _Sequence) -> None:
        """Free a sequence's sampler and slot; its KV cells stay for a prompt that reuses them."""
        s.sampler.close()
        if s.grammar is not None:
            s.grammar.close()
        self._running.remove(s)
        self._free.append(s.seq)

    def _shutdown(self) -> None:
        error = RuntimeError("the model was unloaded")
        with self._cond:
            self._closing = True
            waiting = [r for r in self._queue if not r.cancelled]
            self._queue.clear()
        for s in list(self._running):
            if s.request.cancelled:
                self._release(s)
            else:
                self._fail(s, error)
        for request in waiting:
            request.emit(error)
