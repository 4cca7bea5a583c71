"""One-at-a-time generation on a Llama's own context, with exact limits, logprobs and seeds.

The arguments are the ones llama-cpp-python's `create_chat_completion`/`create_completion`
would generate with (see `generation.completion_arguments`), so prompts, chat-format
stops and sampling match; tokens then come from `Llama.generate` and are read here:
TokenText for the limit and stops, LogprobRecorder for logprobs. A completion's echo with
logprobs first reads its prompt whole, keeping every position's logits, to score the prompt's
own tokens (OpenAI's echo; lm-evaluation-harness's loglikelihood); max_tokens 0 stops there.

Reproducibility: llama.cpp's CPU math depends on how a prompt is split into decode batches,
so a prompt read partly from the KV cache can give other logits than the same prompt read
afresh. Prompts are therefore always read in chunks of `chunk` tokens aligned to absolute
positions, and a cached prefix is reused only up to a chunk boundary that an earlier prompt
read the same way: every prompt is then computed identically, whatever the cache holds.

Images: a prompt with images (vision.MediaPrompt) is read in the same aligned chunks, each
image read whole by mtmd between them; the cache compares the prompt's keys (slots.py), where an
image's positions hold a hash of its pixels, so a second turn about the same image reuses its
cells (and does not encode it again), while another image is never matched past its start. A
prefix is kept only up to a batch edge of both its reading and the new prompt's (an image's
start or end, or a chunk boundary outside images), so image prompts reproduce too.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

import llama_cpp
import numpy as np
from llama_cpp import Llama
from localoip.runtimes.capabilities import TextDelta, TokenLogprob
from localoip.runtimes.llamacpp import pieces
from localoip.runtimes.llamacpp.generation import Generation
from localoip.runtimes.llamacpp.slots import Span, aligned, common_prefix
from localoip.runtimes.llamacpp.token_logprobs import (
    LogprobRecorder,
    entry,
    log_softmax,
    unpredicted,
)
from localoip.runtimes.llamacpp.token_text import TokenText
from localoip.runtimes.llamacpp.vision import PLACEHOLDER, MediaPrompt, prompt_keys


def _bias(bias: dict[int, float]) -> Any:
    ids = np.array(list(bias), dtype=np.intc)
    values = np.array(list(bias.values()), dtype=np.single)

    def processor(input_ids: Any, scores: np.ndarray) -> np.ndarray:
        scores = np.copy(scores)
        scores[ids] += values
        return scores

    return processor


def _settings(args: dict[str, Any], processors: list[Any]) -> dict[str, Any]:
    """`Llama.generate`'s sampling arguments from `_create_completion` arguments."""
    return {
        "top_k": args["top_k"],
        "top_p": args["top_p"],
        "min_p": args["min_p"],
        "typical_p": args["typical_p"],
        "temp": args["temperature"],
        "tfs_z": args["tfs_z"],
        "mirostat_mode": args["mirostat_mode"],
        "mirostat_tau": args["mirostat_tau"],
        "mirostat_eta": args["mirostat_eta"],
        "frequency_penalty": args["frequency_penalty"],
        "presence_penalty": args["presence_penalty"],
        "repeat_penalty": args["repeat_penalty"],
        "stopping_criteria": args["stopping_criteria"],
        "logits_processor": llama_cpp.LogitsProcessorList(processors) if processors else None,
        "grammar": args["grammar"],
    }


def _nothing() -> tuple[int, ...]:
    return ()


class SerialGenerator:
    """Generations on `llm`'s context, one at a time (the caller serialises them)."""

    def __init__(self, llm: Llama, chunk: int) -> None:
        self.llm = llm
        self.chunk = max(1, min(chunk, llm.n_batch))
        llm.n_batch = self.chunk  # Llama.eval splits prompts into batches of n_batch tokens
        self._aligned = 0  # cached positions before this were read as aligned prompt chunks
        self._keys: list[int] = []  # the keys of the prompt those positions hold (slots.py)
        self._spans: list[Span] = []  # and where its images lie

    def forget(self) -> None:
        """The context was used some other way: trust none of the cache."""
        self._aligned = 0

    def run(self, gen: Generation) -> Iterator[TextDelta]:
        """Generate; deltas, the last with usage."""
        llm = self.llm
        args, prompt, special = gen.args, gen.prompt, gen.special
        seed = args["seed"]
        llm.set_seed(seed if seed is not None else random.Random(llm._seed).randint(0, 2**32))
        vocab = pieces.of(llm)

        def piece(token: int) -> bytes:
            return vocab.piece(token, special)

        processors = list(args["logits_processor"] or [])
        if args["logit_bias"]:
            processors.append(_bias({int(k): float(v) for k, v in args["logit_bias"].items()}))
        recorder = LogprobRecorder(gen.logprobs, piece) if gen.logprobs is not None else None
        if recorder is not None:
            processors.append(recorder)
        pending: list[TokenLogprob] = []
        if gen.scored is not None:
            pending = self._score(prompt, gen.scored, gen.logprobs or 0)
        if gen.max_tokens == 0:  # nothing to generate: the echo and the prompt's logprobs
            logprobs = tuple(pending) if recorder is not None else None
            yield TextDelta(gen.echo, "length", logprobs=logprobs, usage=(len(prompt), 0))
            return
        media: MediaPrompt | None = gen.media
        keys, spans = prompt_keys(prompt, media)
        cached = self._reuse_aligned(keys, spans)
        self._aligned = 0  # until the prompt has been read
        self._keys, self._spans = keys, spans
        if media is not None:
            self._read_media(media, cached)
        if gen.scored is not None:
            cached = 0  # the prompt was just read whole, to score it
        text = TokenText(piece, gen.max_tokens, gen.stop)
        reply = gen.reply
        echo = gen.echo
        force = reply.force if reply is not None else _nothing
        settings = _settings(args, processors)
        rest = reply.after if reply is not None else None
        after = settings if rest is None else {**settings, "grammar": rest}
        steps = self._generate(prompt, settings, force, after)
        try:
            for token, forced in steps:
                self._aligned = len(prompt)
                if llama_cpp.llama_vocab_is_eog(llm._model.vocab, token):
                    out = text.end("stop")
                else:
                    if recorder is not None and not forced:
                        pending.append(recorder.take(token))
                    out = text.add(token)
                if text.finish is not None:
                    break
                if out:
                    delta = TextDelta(echo + out, logprobs=tuple(pending) if recorder else None)
                    pending, echo = [], ""
                    if reply is not None:
                        delta = reply.read(delta, text.generated)
                    if delta is not None:
                        yield delta
                if reply is not None and reply.finished:
                    out = text.end("stop")
                    break
            else:
                out = text.end("stop")  # the chat format's stopping criteria ended it
        finally:
            steps.close()
        last = TextDelta(
            echo + out,
            text.finish,
            logprobs=tuple(pending) if recorder else None,
            usage=(len(prompt), text.generated),
            cached_tokens=cached,
            stop_sequence=text.stop_sequence,
        )
        if reply is not None:
            last = reply.read(last, text.generated) or last
        yield last

    def _generate(
        self,
        prompt: list[int],
        settings: dict[str, Any],
        force: Callable[[], tuple[int, ...]],
        after: dict[str, Any],
    ) -> Iterator[tuple[int, bool]]:
        """The tokens generated after `prompt`, each with whether it was forced. After each
        sampled token is taken, `force()` may give tokens to put in as if sampled (a spent
        reasoning budget's close marker): generation then goes on after them with the
        `after` settings (the grammar of the rest of the reply), the cached context kept up
        to where they start."""
        llm, generated = self.llm, []
        while True:
            tokens = llm.generate([*prompt, *generated], **settings)
            try:
                for token in tokens:
                    generated.append(token)
                    yield token, False
                    if forced := force():
                        break
                else:
                    return
            finally:
                tokens.close()
            for token in forced:
                generated.append(token)
                yield token, True
            settings = after

    def _score(self, prompt: list[int], scored: slice, k: int) -> list[TokenLogprob]:
        """Read the whole prompt afresh, in aligned chunks as `generate` would, keeping every
        position's logits; the entries of the `scored` tokens (the first one unpredicted),
        each with its k most likely alternatives. Only a chunk's logits are held at once."""
        llm = self.llm
        vocab = pieces.of(llm)

        def piece(token: int) -> bytes:
            return vocab.piece(token, True)  # the prompt was read with control tokens' text

        llm._ctx.kv_cache_seq_rm(-1, 0, -1)
        llm.n_tokens = self._aligned = 0
        self._keys, self._spans = prompt, []
        entries = [unpredicted(prompt[scored.start], piece)] if scored.stop > scored.start else []
        for start in range(0, len(prompt), self.chunk):
            chunk = prompt[start : start + self.chunk]
            llm._batch.set_batch(batch=chunk, n_past=start, logits_all=True)
            llm._ctx.decode(llm._batch)
            llm.input_ids[start : start + len(chunk)] = chunk
            llm.n_tokens = self._aligned = start + len(chunk)
            logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(len(chunk), llm.n_vocab()))
            # position p's logits predict token p + 1
            for p in range(max(start, scored.start), min(start + len(chunk), scored.stop - 1)):
                entries.append(entry(log_softmax(logits[p - start]), prompt[p + 1], k, piece))
        return entries

    def _reuse_aligned(self, keys: list[int], spans: list[Span]) -> int:
        """Keep only the cached prefix that ends on a batch edge of both the cached prompt's
        reading and this one's (slots.aligned), comparing keys (an image by its hash); how
        many of the prompt's positions that is."""
        llm = self.llm
        common = common_prefix(self._keys, keys)
        limit = min(self._aligned, llm.n_tokens, common, len(keys) - 1)
        keep = aligned(limit, self.chunk, spans, self._spans)
        if keep < llm.n_tokens:
            llm._ctx.kv_cache_seq_rm(-1, keep, -1)
            llm.n_tokens = keep
        return keep

    def _read_media(self, media: MediaPrompt, start: int) -> None:
        """Read a prompt with images from position `start` (a batch edge) up to where
        `Llama.generate` can read the rest itself in aligned chunks: text in chunks aligned to
        absolute positions, each image whole through mtmd."""
        llm, prompt = self.llm, media.tokens
        pos = start
        for span in media.spans:
            if span.end <= pos:
                continue
            self._read_text(prompt, pos, span.start)
            llm._ctx.kv_cache_seq_rm(-1, span.start, -1)
            media.read_image(llm._ctx.ctx, span, 0, llama_cpp.llama_n_ubatch(llm._ctx.ctx))
            llm.input_ids[span.start : span.end] = PLACEHOLDER
            llm.n_tokens = pos = span.end
        edge = pos + (-pos) % self.chunk
        if edge < len(prompt):  # Llama.generate reads from an aligned edge, in whole chunks
            self._read_text(prompt, pos, edge)

    def _read_text(self, prompt: list[int], start: int, end: int) -> None:
        """Read prompt[start:end] at its positions, in chunks that end on multiples of `chunk`."""
        while start < end:
            stop = min(end, start - start % self.chunk + self.chunk)
            self.llm.eval(prompt[start:stop])
            start = stop
