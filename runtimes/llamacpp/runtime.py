"""llama.cpp runtime: GGUF chat and completion (grammars, tools, logprobs) and embeddings.

A request runs on the batching engine (batch.py) when `parallel` > 1 and it may share decode
steps, else on the one-at-a-time path (serial.py); chats are planned in chats.py and become
prompts in prompts.py, and what only llama-cpp-python itself can do runs through it
(legacy.py).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import closing
from dataclasses import replace
from typing import Any, TypeVar

import llama_cpp
import numpy as np
from localoip.runtimes.capabilities import (
    Cancel,
    ChatRequest,
    CompletionRequest,
    Embeddings,
    Emit,
    ModelFacts,
    Runtime,
    Sampling,
    TextDelta,
    TextResult,
    chat_images,
    in_vocabulary,
)
from localoip.runtimes.devices import (
    available_memory,
    decode_threads,
    first_slots,
    gpu_layers,
    llama_gpu_offload,
    parallel_slots,
)
from localoip.runtimes.folding import gather
from localoip.runtimes.llamacpp import chats, legacy, pieces
from localoip.runtimes.llamacpp.batch import BatchEngine
from localoip.runtimes.llamacpp.drafter import open_draft
from localoip.runtimes.llamacpp.generation import (
    completion_generation,
    marked,
    prompt_tokens,
)
from localoip.runtimes.llamacpp.gguf import gguf_facts, gguf_size, model_file
from localoip.runtimes.llamacpp.image_chats import ImageChat, engine_plan, media_prompt
from localoip.runtimes.llamacpp.kv import cache_arguments, chosen_context, kv_bytes_per_sequence
from localoip.runtimes.llamacpp.prompts import ChatPrompt
from localoip.runtimes.llamacpp.serial import SerialGenerator
from localoip.runtimes.llamacpp.speculation import Speculative
from localoip.runtimes.llamacpp.vision import Vision
from localoip.runtimes.options import DraftModel, LlamaCppOptions

T = TypeVar("T")
log = logging.getLogger("localoip")


def _for_generation(part: T | None) -> T:
    """A part of a model loaded for generation; RuntimeError when it is not."""
    if part is None:
        raise RuntimeError("model is not loaded for generation")
    return part


def _opened(path: str, opts: LlamaCppOptions, n_ctx: int) -> llama_cpp.Llama:
    """The GGUF at `path` loaded with the model's options and an `n_ctx` context, pieces
    whole on every path, and warmed up (`warmup`: the first decode after load costs about a
    second; paid here, not in a request)."""
    extra: dict[str, Any] = {}
    if opts.embedding:
        extra = {"embedding": True, "pooling_type": llama_cpp.LLAMA_POOLING_TYPE_MEAN}
    llm = llama_cpp.Llama(
        model_path=path,
        n_ctx=n_ctx,
        n_batch=opts.n_batch,
        n_gpu_layers=gpu_layers(opts.n_gpu_layers),
        # `threads` reads prompts too, as llama-server's -tb follows -t (unset: llama-cpp-
        # python's half the cores to generate and all of them to read prompts)
        n_threads=opts.threads,
        n_threads_batch=opts.threads,
        chat_format=opts.chat_format,
        seed=opts.seed,
        verbose=False,
        **cache_arguments(opts.kv_cache_type, opts.flash_attn),
        **extra,
    )
    if len(llm.input_ids) < llm.n_ctx():
        # llama.cpp rounds the context up (to 256 cells), but llama-cpp-python sizes its token
        # array by the n_ctx asked: a prompt between the two failed in numpy, a 500.
        llm.input_ids = np.zeros(llm.n_ctx(), dtype=np.intc)
    pieces.of(llm)  # whole token pieces on every path, llama-cpp-python's own too
    if opts.warmup:
        if opts.embedding:
            llm.embed("warm up")
        else:
            llm.create_completion("Hi", max_tokens=1, temperature=0.0)
    return llm


def _context(path: str, opts: LlamaCppOptions, gpu: bool) -> tuple[int, str | None]:
    """The context to load the GGUF at `path` with, and for "auto" why (kv.chosen_context):
    its KV cache is sized for the slots `parallel` starts from, or one sequence for an
    embedding model."""
    threads = decode_threads(opts.threads)
    slots = first_slots(opts.parallel, gpu, gguf_size(path), threads)
    sequences = 1 if opts.embedding else slots
    n_ctx, why = chosen_context(path, opts.n_ctx, opts.kv_cache_type, sequences, available_memory())
    return n_ctx, why if opts.n_ctx == "auto" else None


def _engine(
    llm: llama_cpp.Llama, path: str, opts: LlamaCppOptions, gpu: bool
) -> tuple[BatchEngine | None, str]:
    """The batching engine for the loaded model at `path` (None for one slot), and how it was
    sized (devices.parallel_slots: its size, its decoding threads, its KV cache and the memory)."""
    kv_bytes = kv_bytes_per_sequence(llm, opts.kv_cache_type)
    threads = decode_threads(opts.threads)
    slots, reason = parallel_slots(
        opts.parallel, gpu, gguf_size(path), threads, kv_bytes, available_memory()
    )
    draft, model = opts.draft, None
    if isinstance(draft, DraftModel):  # its vocabulary always checked, its weights loaded
        model = open_draft(llm, draft.source, draft.name, vocab_only=slots < 2)  # for an engine
    if slots < 2:
        if model is not None:
            model.close()
            log.info("%s: draft model unused: only the batching engine speculates", path)
        return None, reason
    spec = Speculative(opts.speculative, opts.draft_max)
    try:
        return BatchEngine(llm, slots, opts.parallel_batch, opts.seed, spec, model), reason
    except Exception:
        if model is not None:
            model.close()
        raise


def _must_reproduce(opts: LlamaCppOptions, sampling: Sampling) -> bool:
    """Whether a request must reproduce exactly, so it runs alone on the serial path: a
    deterministic one (the request's `deterministic`, else the model's), or one with a seed
    unless `reproducible` is off. (Batched numbers depend on what shares the decode step and
    on how the slot's cells were read; the serial path reads every prompt in aligned chunks,
    so its numbers depend on neither.)"""
    deterministic = sampling.deterministic
    if deterministic is None:
        deterministic = opts.deterministic
    return deterministic or (opts.reproducible and sampling.seed is not None)


class LlamaCppRuntime(Runtime):
    """A GGUF model on llama.cpp: chat and completion, or embeddings (`embedding`)."""

    options: LlamaCppOptions

    def __init__(self, path: str, options: LlamaCppOptions) -> None:
        super().__init__(path, options)
        self._llm: llama_cpp.Llama | None = None
        self._engine: BatchEngine | None = None
        self._serial: SerialGenerator | None = None
        self._templates: chats.ChatTemplates | None = None
        self._vision: Vision | None = None
        self.slots_reason = ""  # how `parallel` was sized
        self.context_sized: str | None = None  # how `n_ctx = "auto"` was sized

    @property
    def llm(self) -> llama_cpp.Llama:
        if self._llm is None:
            raise RuntimeError("model is not loaded")
        return self._llm

    def load(self) -> None:
        """Size the context (`n_ctx`), load the GGUF, warm it up, and size the batching
        engine (`parallel`); both share the memory their KV cache may take."""
        opts = self.options
        self.path = model_file(self.path)
        gpu = llama_gpu_offload() and gpu_layers(opts.n_gpu_layers) != 0
        n_ctx, self.context_sized = _context(self.path, opts, gpu)
        self._llm = _opened(self.path, opts, n_ctx)
        try:
            self._prepare(gpu)
        except Exception:
            self.unload()  # the weights too: a failed load keeps nothing
            raise

    def _prepare(self, gpu: bool) -> None:
        """The loaded model's projector, serial path, templates and engine."""
        opts = self.options
        if opts.mmproj is not None:
            self._vision = Vision(self.llm, opts.mmproj, gpu)
        if not opts.embedding:
            self._serial = SerialGenerator(self.llm, opts.prompt_chunk)
            self._templates = chats.chat_templates(
                self.llm,
                opts.chat_format,
                opts.reasoning_effort,
                opts.max_reasoning_tokens,
                opts.context_overflow,
            )
            self._engine, self.slots_reason = _engine(self.llm, self.path, opts, gpu)

    @property
    def slots(self) -> int:
        """Generations that run at once: the engine's slots, or 1."""
        return self._engine.slots if self._engine is not None else 1

    def facts(self) -> ModelFacts:
        """Context in use and trained (and how "auto" chose it), quantisation, file size,
        architecture and weights (gguf.gguf_facts); for a chat model also its default template
        and whether its replies carry reasoning."""
        vision, sized = self._vision is not None, self.context_sized
        facts = replace(gguf_facts(self.llm, self.path), vision=vision, context_sized=sized)
        if self._templates is None:
            return facts
        prompt, model = self._templates.default
        return replace(
            facts, chat_template=prompt.source, reasons=model.format.reasoning is not None
        )

    @property
    def serial(self) -> SerialGenerator:
        return _for_generation(self._serial)

    def unload(self) -> None:
        if self._engine is not None:
            self._engine.close()  # first: it reads images with the projector
            self._engine = None
        if self._vision is not None:
            self._vision.close()  # before the weights it was made on
            self._vision = None
        if self._llm is not None:
            self._llm.close()
            self._llm = None
        self._serial = None
        self._templates = None

    @property
    def templates(self) -> chats.ChatTemplates:
        """This model's chat templates: the default, and its `tool_use` one if any."""
        return _for_generation(self._templates)

    @property
    def prompt(self) -> ChatPrompt:
        """How this model's chats become prompts with its default template (prompts.py)."""
        return self.templates.default[0]

    def count_tokens(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode(), add_bos=False, special=False))

    # -- chat -------------------------------------------------------------------------------

    @property
    def chat_model(self) -> chats.ChatModel:
        """What this model brings to its chats with its default template: its reply format
        and reasoning defaults."""
        return self.templates.default[1]

    def chat(self, request: ChatRequest) -> TextResult:
        return gather(list(self.chat_stream(request)))

    def chat_stream(self, request: ChatRequest) -> Iterator[TextDelta]:
        prompt, model, plan = self.templates.planned(self.llm, request)
        if chat_images(request.messages):  # on the serial path: mtmd reads into its context
            chat = ImageChat(self.llm, self._vision, prompt, model, self.options)
            yield from chat.stream(self.serial, request, plan)
            return
        if prompt.renders:
            gen = chats.chat_generation(self.llm, prompt, request, plan, model)
            yield from marked(self.serial.run(gen), gen.truncated)
            return
        self.serial.forget()  # llama-cpp-python's own path uses the context as it likes
        yield from chats.handler_chat(self.llm, prompt, request, plan, model)

    # -- completion -------------------------------------------------------------------------

    def complete(self, request: CompletionRequest) -> TextResult:
        return gather(list(self.complete_stream(request)))

    def complete_stream(self, request: CompletionRequest) -> Iterator[TextDelta]:
        gen = completion_generation(self.llm, request, self.options.context_overflow)
        yield from marked(self.serial.run(gen), gen.truncated)

    # -- continuous batching ----------------------------------------------------------------

    @property
    def engine(self) -> BatchEngine | None:
        """The batching engine, when `parallel` > 1."""
        return self._engine

    def chat_batched(self, request: ChatRequest, emit: Emit) -> Cancel | None:
        """Queue a chat in the batching engine; None when it needs chat_stream instead (no
        engine, a seed that must reproduce, a chat handler or images the engine cannot use)."""
        engine = self._engine
        # A named template renders whenever the default does: only a named format may not.
        if engine is None or not self.prompt.renders or self._exact(request.sampling):
            return None
        prompt, model, plan = self.templates.planned(self.llm, request)
        prepare = engine_plan(self._vision, self.llm, prompt, request, plan, model, self.options)
        speculate = request.sampling.speculative is not False
        return engine.submit(prepare, emit, speculate) if prepare is not None else None

    def complete_batched(self, request: CompletionRequest, emit: Emit) -> Cancel | None:
        """Queue a completion in the batching engine; None when it needs complete_stream
        instead (no engine, a seed that must reproduce, or an echo with logprobs, whose
        prompt is scored on the serial context)."""
        engine = self._engine
        scores_prompt = request.echo and request.logprobs is not None
        if engine is None or scores_prompt or self._exact(request.sampling):
            return None
        llm, overflow = self.llm, self.options.context_overflow
        speculate = request.sampling.speculative is not False
        return engine.submit(lambda: completion_generation(llm, request, overflow), emit, speculate)

    def _exact(self, sampling: Sampling) -> bool:
        return _must_reproduce(self.options, sampling)

    # -- embeddings -------------------------------------------------------------------------

    def embed(self, texts: list[str]) -> Embeddings:
        with legacy.client_errors():
            vectors = np.asarray(self.llm.embed(texts, normalize=True), dtype=np.float32)
        return Embeddings(vectors=vectors, tokens=tuple(map(self.count_tokens, texts)))

    # -- tokenizer --------------------------------------------------------------------------

    def max_model_len(self) -> int:
        return self.llm.n_ctx()

    def tokenize(self, text: str, add_special: bool) -> list[int]:
        """Tokens of the text, control-token text included; add_special adds the BOS (or EOS)
        the model's GGUF asks for."""
        return self.llm.tokenize(text.encode(), add_bos=add_special, special=True)

    def tokenize_chat(self, request: ChatRequest) -> list[int]:
        """The prompt tokens `chat(request)` generates from: tools offered, the chat template
        applied and tokenized (prompts.py)."""
        prompt, _, plan = self.templates.planned(self.llm, request)
        if chat_images(request.messages):  # an image's positions count, as placeholders
            with closing(media_prompt(self._vision, request, prompt, plan, self.options)) as media:
                return media.tokens
        args = chats.chat_arguments(prompt, request, plan)
        return prompt_tokens(self.llm, args["prompt"])

    def detokenize(self, ids: list[int]) -> str:
        tokens = in_vocabulary(ids, self.llm.n_vocab(), "tokens")
        return self.llm.detokenize(tokens, special=True).decode("utf-8", errors="replace")

    def token_strings(self, ids: list[int]) -> list[str]:
        tokens = in_vocabulary(ids, self.llm.n_vocab(), "tokens")
        return [self.llm._model.token_get_text(t) for t in tokens]
