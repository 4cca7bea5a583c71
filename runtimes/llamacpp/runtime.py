"""llama.cpp runtime: GGUF chat and completion (grammars, tools, logprobs) and embeddings."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import jinja2
import llama_cpp
import msgspec
import numpy as np
from localoip.runtimes.capabilities import (
    Cancel,
    ChatRequest,
    CompletionRequest,
    Embeddings,
    Emit,
    InputError,
    ModelFacts,
    Runtime,
    Sampling,
    TextDelta,
    TextResult,
    TokenLogprob,
    gather,
    in_vocabulary,
)
from localoip.runtimes.devices import (
    available_memory,
    gpu_layers,
    llama_gpu_offload,
    parallel_slots,
)
from localoip.runtimes.llamacpp import tool_calls
from localoip.runtimes.llamacpp.batch import (
    BatchEngine,
    Generation,
    completion_arguments,
    plan,
    prompt_tokens,
)
from localoip.runtimes.llamacpp.json_grammar import GrammarBuilder, compile_grammar, schema_grammar
from localoip.runtimes.llamacpp.serial import SerialGenerator
from localoip.runtimes.options import LlamaCppOptions
from localoip.runtimes.sources.hub_files import SPLIT
from localoip.runtimes.wire.openai import chat, completions
from localoip.runtimes.wire.openai.requests import completion_fields, sampling_fields

A = TypeVar("A")

FILE_TYPES = {
    value: name.removeprefix("LLAMA_FTYPE_").removeprefix("MOSTLY_").removeprefix("ALL_")
    for name, value in vars(llama_cpp).items()
    if name.startswith("LLAMA_FTYPE_") and name != "LLAMA_FTYPE_GUESSED"
}
"""GGUF `general.file_type` numbers by llama.cpp's names for them: 15 is "Q4_K_M"."""


def gguf_size(path: str) -> int:
    """Bytes of a GGUF file, or of every part of a split one (`path` is its first part)."""
    file = Path(path)
    split = SPLIT.match(file.name)
    if split is None:
        return file.stat().st_size
    parts = file.parent.glob(f"{glob.escape(split['prefix'])}-*-of-{split['count']}.gguf")
    return sum(part.stat().st_size for part in parts if SPLIT.match(part.name))


def _read(answer: dict[str, Any], into: type[A]) -> A:
    """One of llama-cpp-python's OpenAI-shaped answers read as a wire Struct; its logprobs are
    numpy floats, which only JSON turns into plain numbers."""
    return msgspec.json.decode(msgspec.json.encode(answer, enc_hook=_number), type=into)


def _number(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON")


def top_k(
    logprobs: tuple[TokenLogprob, ...] | None, k: int | None
) -> tuple[TokenLogprob, ...] | None:
    """llama-cpp-python's logprobs with at most k alternatives: it appends the sampled token
    to the k most likely when it is not among them, so a (k + 1)th entry is that one."""
    if logprobs is None or k is None:
        return logprobs
    return tuple(replace(lp, top=lp.top[:k]) for lp in logprobs)


class _CallDeltas:
    """Reads tool calls out of a reply's deltas as they stream (tool_choice auto or forced)."""

    def __init__(self, fam: tool_calls.Family, request: ChatRequest, mode: str) -> None:
        self._reader = tool_calls.CallReader(fam, request.tools, forced=mode == "forced")

    def read(self, delta: TextDelta) -> TextDelta | None:
        """The delta with its text split into text and call pieces; None if nothing is left."""
        text, pieces = self._reader.feed(delta.text)
        if delta.finish_reason is None:
            if text or pieces or delta.logprobs:
                return replace(delta, text=text, call_pieces=tuple(pieces))
            return None
        rest, more, calls = self._reader.end(cut=delta.finish_reason == "length")
        finish = "tool_calls" if calls and delta.finish_reason != "length" else delta.finish_reason
        return replace(
            delta,
            text=text + rest,
            finish_reason=finish,
            tool_calls=calls,
            call_pieces=(*pieces, *more),
        )


class LlamaCppRuntime(Runtime):
    options: LlamaCppOptions

    def __init__(self, path: str, options: LlamaCppOptions) -> None:
        super().__init__(path, options)
        self._llm: llama_cpp.Llama | None = None
        self._engine: BatchEngine | None = None
        self._serial: SerialGenerator | None = None
        self._family = tool_calls.HERMES
        self._renders_chats = True
        self.slots_reason = ""  # how `parallel` was sized

    @property
    def llm(self) -> llama_cpp.Llama:
        if self._llm is None:
            raise RuntimeError("model is not loaded")
        return self._llm

    def load(self) -> None:
        opts = self.options
        if os.path.isdir(self.path):
            ggufs = sorted(f for f in os.listdir(self.path) if f.endswith(".gguf"))
            if len(ggufs) != 1:
                raise FileNotFoundError(f"expected one .gguf file in {self.path}, found {ggufs}")
            self.path = os.path.join(self.path, ggufs[0])
        extra: dict[str, Any] = {}
        if opts.embedding:
            extra = {"embedding": True, "pooling_type": llama_cpp.LLAMA_POOLING_TYPE_MEAN}
        self._llm = llama_cpp.Llama(
            model_path=self.path,
            n_ctx=opts.n_ctx,
            n_batch=opts.n_batch,
            n_gpu_layers=gpu_layers(opts.n_gpu_layers),
            n_threads=opts.threads,
            chat_format=opts.chat_format,
            seed=opts.seed,
            verbose=False,
            **extra,
        )
        if opts.warmup:
            # The first decode after load costs about a second; pay it here, not in a request.
            if opts.embedding:
                self._llm.embed("warm up")
            else:
                self._llm.create_completion("Hi", max_tokens=1, temperature=0.0)
        if not opts.embedding:
            self._serial = SerialGenerator(self._llm, opts.prompt_chunk)
            template = (
                None if opts.chat_format else self._llm.metadata.get("tokenizer.chat_template")
            )
            self._family = tool_calls.family(template)
            self._renders_chats = self._can_render()
        if not opts.embedding:
            gpu = llama_gpu_offload() and gpu_layers(opts.n_gpu_layers) != 0
            slots, self.slots_reason = parallel_slots(
                opts.parallel, gpu, self._kv_bytes_per_slot(), available_memory()
            )
            if slots > 1:
                self._engine = BatchEngine(self._llm, slots, opts.parallel_batch, opts.seed)

    def _kv_bytes_per_slot(self) -> int:
        """The KV cache of one slot at the full context: F16 keys and values in every layer."""
        model = self.llm.model
        heads = llama_cpp.llama_model_n_head(model)
        kv_width = llama_cpp.llama_model_n_embd(model) * llama_cpp.llama_model_n_head_kv(model)
        layers = llama_cpp.llama_model_n_layer(model)
        return self.llm.n_ctx() * layers * 2 * (kv_width // max(heads, 1)) * 2

    @property
    def slots(self) -> int:
        """Generations that run at once: the engine's slots, or 1."""
        return self._engine.slots if self._engine is not None else 1

    def facts(self) -> ModelFacts:
        """n_ctx in use, the trained context from the GGUF's metadata, its file type, and the
        bytes of its file (every part of a split one)."""
        meta = self.llm.metadata
        trained = meta.get(f"{meta.get('general.architecture')}.context_length")
        file_type = meta.get("general.file_type")
        return ModelFacts(
            context_length=self.llm.n_ctx(),
            trained_context_length=int(trained) if trained else None,
            quantization=FILE_TYPES.get(int(file_type)) if file_type else None,
            file_size=gguf_size(self.path),
        )

    def _can_render(self) -> bool:
        """Whether the chat handler only renders a prompt, so the serial loop can run it."""
        try:
            completion_arguments(self.llm, True, {"messages": [{"role": "user", "content": "Hi"}]})
        except Exception:
            return False
        return True

    @property
    def serial(self) -> SerialGenerator:
        if self._serial is None:
            raise RuntimeError("model is not loaded for generation")
        return self._serial

    def unload(self) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None
        if self._llm is not None:
            self._llm.close()
            self._llm = None
        self._serial = None

    def count_tokens(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode(), add_bos=False, special=False))

    # -- settings ---------------------------------------------------------------------------

    def _sampling(self, sampling: Sampling) -> dict[str, Any]:
        """llama-cpp-python keyword arguments for the settings that were given."""
        kwargs = sampling_fields(sampling)
        if sampling.logit_bias:
            in_vocabulary(list(sampling.logit_bias), self.llm.n_vocab(), "logit_bias")
            kwargs["logit_bias"] = dict(sampling.logit_bias)
        return kwargs

    @contextmanager
    def _logits_for(self, logprobs: int | None) -> Iterator[None]:
        """Keep every position's logits for one request, so logprobs can be reported.

        llama-cpp-python reports logprobs only for a model created with logits_all,
        whose score buffer (n_ctx x n_vocab floats) would be resident all the time.
        Here it exists only during a logprobs request; untouched rows cost no memory.
        """
        if logprobs is None:
            yield
            return
        llm = self.llm
        saved = llm._logits_all, llm.scores
        llm._logits_all = True
        llm.scores = np.zeros((llm.n_ctx(), llm.n_vocab()), dtype=np.single)
        llm.reset()  # cached prompt positions have no logits; evaluate the prompt afresh
        try:
            yield
        finally:
            llm._logits_all, llm.scores = saved
            llm.reset()

    @contextmanager
    def _client_errors(self) -> Iterator[None]:
        try:
            yield
        except ValueError as exc:
            if "exceed context window" in str(exc):
                raise InputError(str(exc), "messages", "context_length_exceeded") from None
            raise

    # -- chat -------------------------------------------------------------------------------

    def _chat_plan(self, request: ChatRequest) -> tuple[dict[str, Any], tool_calls.Family, str]:
        """create_chat_completion arguments, the tool-call family that reads the reply, and
        the mode: "text", "auto" (text or calls) or "forced" (calls)."""
        fam = self._family
        mode = "text"
        if request.tools and request.tool_choice != "none":
            mode = "auto" if request.tool_choice == "auto" else "forced"
        elif not fam.template_tools:
            fam = tool_calls.HERMES
        messages = tool_calls.template_messages(fam, request.messages)
        kwargs: dict[str, Any] = {"messages": messages, **self._sampling(request.sampling)}
        if mode != "text" and fam.template_tools:
            kwargs["tools"] = tool_calls.template_tools(request.tools)
        elif mode != "text":
            fam = tool_calls.HERMES
            offer = {
                "role": "system",
                "content": tool_calls.tools_prompt(request.tools, mode == "forced"),
            }
            if messages and messages[0]["role"] == "system":
                offer["content"] = f"{messages[0]['content']}\n\n{offer['content']}"
                messages = messages[1:]
            kwargs["messages"] = [offer, *messages]
        kwargs["grammar"] = self._grammar(request, fam, mode)
        if kwargs["grammar"] is None:
            del kwargs["grammar"]
        return kwargs, fam, mode

    @staticmethod
    def _grammar(
        request: ChatRequest, fam: tool_calls.Family, mode: str
    ) -> llama_cpp.LlamaGrammar | None:
        """The reply's grammar: a call, the response format, or (auto with a format) either."""
        schema = request.json_schema
        if mode == "forced":
            builder = GrammarBuilder()
            chosen = tool_calls.chosen(request.tools, request.tool_choice)
            return compile_grammar(
                builder.text(tool_calls.call_rule(builder, fam, chosen)), "tools"
            )
        if schema is None:
            return None
        if mode == "text":
            return schema_grammar(schema, "response_format")
        builder = GrammarBuilder()
        call = tool_calls.call_rule(builder, fam, request.tools)
        message = builder.schema(schema or {"type": "object"}, "message", "response_format")
        return compile_grammar(builder.text(f"{call} | {message}"), "response_format")

    def _arguments(self, chat: bool, kwargs: dict[str, Any], param: str) -> dict[str, Any]:
        """What llama-cpp-python would generate with; a template that refuses is a 400."""
        try:
            return completion_arguments(self.llm, chat, kwargs)
        except (ValueError, TypeError, jinja2.TemplateError) as exc:
            raise InputError(
                f"the chat format cannot render these messages: {exc}", param
            ) from None

    def _chat_arguments(
        self, request: ChatRequest, kwargs: dict[str, Any], mode: str
    ) -> dict[str, Any]:
        """The completion arguments of a chat. To continue the final (assistant) message, the
        messages before it are rendered with the generation prompt and its text follows, so
        the model goes on from inside its own turn (vLLM's `continue_final_message`)."""
        if not request.continue_final:
            return self._arguments(True, kwargs, "messages")
        *head, last = kwargs["messages"]
        if last["role"] != "assistant" or not head:
            raise InputError(
                "continuing a reply needs an assistant message last, after another message",
                "messages",
            )
        if mode != "text":
            raise InputError("a reply with tools cannot be continued", "tools")
        args = self._arguments(True, {**kwargs, "messages": head}, "messages")
        prompt, text = args["prompt"], last["content"] or ""
        if isinstance(prompt, str):
            return {**args, "prompt": prompt + text}
        # The chat handler gave tokens: the reply so far follows as plain text's tokens.
        return {**args, "prompt": [*prompt, *self.llm.tokenize(text.encode(), add_bos=False)]}

    def _chat_generation(
        self, request: ChatRequest, kwargs: dict[str, Any], mode: str
    ) -> Generation:
        args = self._chat_arguments(request, kwargs, mode)
        # Call markers may be control tokens ([TOOL_CALLS], <|python_tag|>): keep their text.
        return plan(self.llm, args, "messages", request.logprobs, special=mode != "text")

    def chat(self, request: ChatRequest) -> TextResult:
        return gather(list(self.chat_stream(request)))

    def chat_stream(self, request: ChatRequest) -> Iterator[TextDelta]:
        kwargs, fam, mode = self._chat_plan(request)
        if self._renders_chats:
            deltas = self.serial.run(self._chat_generation(request, kwargs, mode))
        else:
            deltas = self._legacy_chat_stream(kwargs, request)
        if mode == "text":
            yield from deltas
            return
        calls = _CallDeltas(fam, request, mode)
        for delta in deltas:
            out = calls.read(delta)
            if out is not None:
                yield out

    def _legacy_chat_stream(
        self, kwargs: dict[str, Any], request: ChatRequest
    ) -> Iterator[TextDelta]:
        """Chat through llama-cpp-python itself, for chat handlers that do more than render a
        prompt (without exact limits or our own logprobs, and unable to continue a reply)."""
        if request.continue_final:
            raise InputError("this model's chat handler cannot continue a reply", "messages")
        self.serial.forget()
        with self._client_errors(), self._logits_for(request.logprobs):
            if request.logprobs is not None:
                kwargs |= {"logprobs": True, "top_logprobs": request.logprobs}
            chunks = self.llm.create_chat_completion(stream=True, **kwargs)
            yield from self._deltas(
                chat.chunk_delta(_read(c, chat.ChatChunk).choices[0]) for c in chunks
            )

    def _deltas(self, deltas: Iterator[TextDelta]) -> Iterator[TextDelta]:
        """The deltas llama-cpp-python's chunks read as, those with text or a finish_reason,
        usage on the last one: prompt tokens are the context length when the first token
        arrives, and each streamed piece is one generated token."""
        prompt_tokens: int | None = None
        generated = 0
        for delta in deltas:
            if prompt_tokens is None:
                prompt_tokens = self.llm.n_tokens
            finish = delta.finish_reason
            if delta.text:
                generated += 1
            if delta.text or finish:
                yield TextDelta(
                    delta.text,
                    finish,
                    logprobs=delta.logprobs,
                    usage=(prompt_tokens or 0, generated) if finish else None,
                )

    # -- completion -------------------------------------------------------------------------

    def _completion_kwargs(self, request: CompletionRequest) -> dict[str, Any]:
        if not request.prompt:
            raise InputError("prompt must not be empty", "prompt")
        return {**completion_fields(request), **self._sampling(request.sampling)}

    def _completion_generation(self, request: CompletionRequest) -> Generation:
        args = self._arguments(False, self._completion_kwargs(request), "prompt")
        return plan(self.llm, args, "prompt", request.logprobs)

    @staticmethod
    def _legacy_completion(request: CompletionRequest) -> bool:
        """Echo with logprobs: the prompt's own logprobs come from llama-cpp-python."""
        return request.echo and request.logprobs is not None

    def complete(self, request: CompletionRequest) -> TextResult:
        if not self._legacy_completion(request):
            return gather(list(self.complete_stream(request)))
        self.serial.forget()  # llama-cpp-python's own path, as complete_stream explains
        with self._client_errors(), self._logits_for(request.logprobs):
            out = self.llm.create_completion(**self._completion_kwargs(request))
        result = completions.completion_result(_read(out, completions.Completion))
        return replace(result, logprobs=top_k(result.logprobs, request.logprobs))

    def complete_stream(self, request: CompletionRequest) -> Iterator[TextDelta]:
        if not self._legacy_completion(request):
            yield from self.serial.run(self._completion_generation(request))
            return
        # The prompt's logprobs of an echo are llama-cpp-python's own; its top logprobs have
        # the sampled token added when it is not among the k, so that entry is taken out.
        self.serial.forget()
        kwargs = self._completion_kwargs(request)
        with self._client_errors(), self._logits_for(request.logprobs):
            chunks = self.llm.create_completion(stream=True, **kwargs)
            choices = (_read(c, completions.CompletionChunk).choices[0] for c in chunks)
            for delta in self._deltas(completions.chunk_delta(c) for c in choices):
                yield replace(delta, logprobs=top_k(delta.logprobs, request.logprobs))

    # -- continuous batching ----------------------------------------------------------------

    @property
    def engine(self) -> BatchEngine | None:
        """The batching engine, when `parallel` > 1."""
        return self._engine

    def chat_batched(self, request: ChatRequest, emit: Emit) -> Cancel | None:
        """Queue a chat in the batching engine; None when it needs chat_stream instead
        (no engine, a seed that must reproduce, or a chat handler the engine cannot use)."""
        engine = self._engine
        if engine is None or not self._renders_chats or self._exact(request.sampling):
            return None
        kwargs, fam, mode = self._chat_plan(request)
        if mode != "text":
            calls = _CallDeltas(fam, request, mode)

            def read_calls(item: TextDelta | BaseException | None) -> None:
                if isinstance(item, TextDelta):
                    out = calls.read(item)
                    if out is not None:
                        emit(out)
                else:
                    emit(item)

            return engine.submit(lambda: self._chat_generation(request, kwargs, mode), read_calls)
        return engine.submit(lambda: self._chat_generation(request, kwargs, mode), emit)

    def complete_batched(self, request: CompletionRequest, emit: Emit) -> Cancel | None:
        """Queue a completion in the batching engine; None when it needs complete_stream
        instead (no engine, a seed that must reproduce, or echo with logprobs)."""
        engine = self._engine
        if engine is None or self._legacy_completion(request) or self._exact(request.sampling):
            return None
        return engine.submit(lambda: self._completion_generation(request), emit)

    def _exact(self, sampling: Sampling) -> bool:
        """Whether a request must reproduce exactly, so it runs alone: one with a seed, unless
        `reproducible` is off. (Batched numbers depend on what shares the decode step.)"""
        return self.options.reproducible and sampling.seed is not None

    # -- embeddings -------------------------------------------------------------------------

    def embed(self, texts: list[str]) -> Embeddings:
        with self._client_errors():
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
        """The prompt tokens `chat(request)` generates from: tools offered, the chat format
        applied and tokenized exactly as llama-cpp-python does."""
        kwargs, _, mode = self._chat_plan(request)
        return prompt_tokens(self.llm, self._chat_arguments(request, kwargs, mode)["prompt"])

    def detokenize(self, ids: list[int]) -> str:
        tokens = in_vocabulary(ids, self.llm.n_vocab(), "tokens")
        return self.llm.detokenize(tokens, special=True).decode("utf-8", errors="replace")

    def token_strings(self, ids: list[int]) -> list[str]:
        tokens = in_vocabulary(ids, self.llm.n_vocab(), "tokens")
        return [self.llm._model.token_get_text(t) for t in tokens]
