"""llama.cpp runtime: GGUF chat and completion (grammars, tools, logprobs) and embeddings."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import jinja2
import llama_cpp
import numpy as np
from llama_cpp.llama_grammar import JSON_GBNF
from localoip.runtimes import tool_calls
from localoip.runtimes.base import (
    Cancel,
    ChatRequest,
    CompletionRequest,
    Embeddings,
    Emit,
    InputError,
    Runtime,
    Sampling,
    TextDelta,
    TextResult,
    in_vocabulary,
)
from localoip.runtimes.devices import gpu_layers
from localoip.runtimes.llamacpp_batch import BatchEngine, completion_arguments, prompt_tokens
from localoip.runtimes.openai_json import (
    chat_logprobs,
    chat_result,
    completion_fields,
    completion_logprobs,
    completion_result,
    sampling_fields,
)
from localoip.runtimes.options import LlamaCppOptions


class LlamaCppRuntime(Runtime):
    options: LlamaCppOptions

    def __init__(self, path: str, options: LlamaCppOptions) -> None:
        super().__init__(path, options)
        self._llm: llama_cpp.Llama | None = None
        self._engine: BatchEngine | None = None

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
        if opts.parallel > 1 and not opts.embedding:
            self._engine = BatchEngine(self._llm, opts.parallel, opts.parallel_batch, opts.seed)

    def unload(self) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None
        if self._llm is not None:
            self._llm.close()
            self._llm = None

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

    def _chat_kwargs(self, request: ChatRequest) -> tuple[dict[str, Any], str]:
        """create_chat_completion arguments, and how to read the reply: text, forced or auto."""
        messages = [tool_calls.as_template_message(m) for m in request.messages]
        mode = "text"
        schema = request.json_schema
        if request.tools and request.tool_choice != "none":
            mode = "auto" if request.tool_choice == "auto" else "forced"
            offer = {"role": "system", "content": tool_calls.tools_prompt(request.tools, mode)}
            if messages and messages[0]["role"] == "system":
                offer["content"] = f"{messages[0]['content']}\n\n{offer['content']}"
                messages = messages[1:]
            messages.insert(0, offer)
            if mode == "forced":
                schema = tool_calls.call_schema(request.tools, request.tool_choice)
        kwargs: dict[str, Any] = {"messages": messages, **self._sampling(request.sampling)}
        if schema is not None:
            kwargs["grammar"] = (
                llama_cpp.LlamaGrammar.from_string(JSON_GBNF, verbose=False)
                if not schema
                else llama_cpp.LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
            )
        if request.logprobs is not None:
            kwargs |= {"logprobs": True, "top_logprobs": request.logprobs}
        return kwargs, mode

    def _read_reply(self, reply: TextResult, mode: str, request: ChatRequest) -> TextResult:
        """The reply with the tool calls it makes, read from its text."""
        if mode == "forced" and reply.finish_reason == "stop":
            calls = tool_calls.parse_forced(reply.text)
            return replace(reply, text="", finish_reason="tool_calls", tool_calls=calls)
        if mode == "auto":
            text, calls = tool_calls.parse_auto(reply.text, request.tools)
            if calls:
                return replace(reply, text=text, finish_reason="tool_calls", tool_calls=calls)
        return reply

    def chat(self, request: ChatRequest) -> TextResult:
        kwargs, mode = self._chat_kwargs(request)
        with self._client_errors(), self._logits_for(request.logprobs):
            out = self.llm.create_chat_completion(**kwargs)
        return self._read_reply(chat_result(out), mode, request)

    def chat_stream(self, request: ChatRequest) -> Iterator[TextDelta]:
        kwargs, mode = self._chat_kwargs(request)
        if mode != "text":
            # A tool call is only known once the whole reply is; it goes out as one delta.
            result = self.chat(request)
            yield TextDelta(
                result.text,
                result.finish_reason,
                result.tool_calls,
                result.logprobs,
                (result.prompt_tokens, result.completion_tokens),
            )
            return
        with self._client_errors(), self._logits_for(request.logprobs):
            chunks = self.llm.create_chat_completion(stream=True, **kwargs)
            yield from self._deltas(
                (c["choices"][0]["delta"].get("content") or "", c["choices"][0]) for c in chunks
            )

    def _deltas(self, pieces: Iterator[tuple[str, dict[str, Any]]]) -> Iterator[TextDelta]:
        """Stream deltas with usage on the last one: prompt tokens are the context length
        when the first token arrives, and each streamed piece is one generated token."""
        prompt_tokens: int | None = None
        generated = 0
        for text, choice in pieces:
            if prompt_tokens is None:
                prompt_tokens = self.llm.n_tokens
            finish = choice.get("finish_reason")
            if text:
                generated += 1
            if text or finish:
                yield TextDelta(
                    text,
                    finish,
                    logprobs=chat_logprobs(choice.get("logprobs"))
                    or completion_logprobs(choice.get("logprobs")),
                    usage=(prompt_tokens or 0, generated) if finish else None,
                )

    # -- completion -------------------------------------------------------------------------

    def _completion_kwargs(self, request: CompletionRequest) -> dict[str, Any]:
        if not request.prompt:
            raise InputError("prompt must not be empty", "prompt")
        return {**completion_fields(request), **self._sampling(request.sampling)}

    def complete(self, request: CompletionRequest) -> TextResult:
        with self._client_errors(), self._logits_for(request.logprobs):
            out = self.llm.create_completion(**self._completion_kwargs(request))
        return completion_result(out)

    def complete_stream(self, request: CompletionRequest) -> Iterator[TextDelta]:
        with self._client_errors(), self._logits_for(request.logprobs):
            chunks = self.llm.create_completion(stream=True, **self._completion_kwargs(request))
            yield from self._deltas((c["choices"][0]["text"], c["choices"][0]) for c in chunks)

    # -- continuous batching (parallel > 1) -------------------------------------------------

    @property
    def engine(self) -> BatchEngine | None:
        """The batching engine, when `parallel` > 1."""
        return self._engine

    def chat_batched(self, request: ChatRequest, emit: Emit) -> Cancel | None:
        """Queue a chat in the batching engine; None when it needs chat_stream instead
        (no engine, json_schema, tools, logprobs, or a chat handler the engine cannot use)."""
        engine = self._engine
        if (
            engine is None
            or not engine.chats
            or request.json_schema is not None
            or request.logprobs is not None
            or (request.tools and request.tool_choice != "none")
        ):
            return None
        return engine.chat(lambda: self._chat_kwargs(request)[0], emit)

    def complete_batched(self, request: CompletionRequest, emit: Emit) -> Cancel | None:
        """Queue a completion in the batching engine; None when it needs complete_stream
        instead (no engine, echo, suffix or logprobs)."""
        engine = self._engine
        if (
            engine is None
            or request.echo
            or request.suffix is not None
            or request.logprobs is not None
        ):
            return None
        return engine.complete(lambda: self._completion_kwargs(request), emit)

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
        kwargs, _ = self._chat_kwargs(request)
        try:
            args = completion_arguments(self.llm, True, kwargs)
        except (ValueError, jinja2.TemplateError) as exc:
            raise InputError(
                f"the chat format cannot render these messages: {exc}", "messages"
            ) from None
        return prompt_tokens(self.llm, args["prompt"])

    def detokenize(self, ids: list[int]) -> str:
        tokens = in_vocabulary(ids, self.llm.n_vocab(), "tokens")
        return self.llm.detokenize(tokens, special=True).decode("utf-8", errors="replace")

    def token_strings(self, ids: list[int]) -> list[str]:
        tokens = in_vocabulary(ids, self.llm.n_vocab(), "tokens")
        return [self.llm._model.token_get_text(t) for t in tokens]
