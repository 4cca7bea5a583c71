"""What one generation is, whichever path runs it: the arguments llama-cpp-python would
generate with, its prompt as tokens, and its resolved limits.

Generations match llama-cpp-python's: `completion_arguments` asks `Llama.create_chat_completion`
and `Llama.create_completion` themselves for the arguments they would generate with (see
`_Recorder`), so prompts, stop strings and sampling defaults are llama-cpp-python's; `plan`
turns them into a `Generation` that the batching engine (batch.py) and the one-at-a-time path
(serial.py) both run, with TokenText's rules for stops, the exact token limit and finish
reasons, and LogprobRecorder's logprobs.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import cache
from typing import TYPE_CHECKING, Any

import jinja2
from llama_cpp import Llama
from localoip.runtimes.capabilities import (
    CompletionRequest,
    Emit,
    InputError,
    Sampling,
    TextDelta,
    Truncated,
    in_vocabulary,
)
from localoip.runtimes.llamacpp.context import (
    cut_completion,
    policy_of,
    prompt_limit,
    too_long,
)
from localoip.runtimes.wire.openai.requests import completion_fields, sampling_fields

if TYPE_CHECKING:
    from localoip.runtimes.llamacpp.chat_reply import ChatReply


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


def arguments(llm: Llama, chat: bool, kwargs: dict[str, Any], param: str) -> dict[str, Any]:
    """completion_arguments, with what llama-cpp-python refuses (a chat format that cannot
    render the messages, say) as an InputError on `param`: a 400."""
    try:
        return completion_arguments(llm, chat, kwargs)
    except (ValueError, TypeError, jinja2.TemplateError) as exc:
        raise InputError(f"the chat format cannot render these messages: {exc}", param) from None


@cache
def chat_defaults() -> tuple[tuple[str, Any], ...]:
    """Where `Llama.create_chat_completion`'s defaults differ from `create_completion`'s
    (temperature 0.2 for 0.8, no token limit for 16): a chat rendered on our side generates
    with them, as it would through llama-cpp-python's chat handlers."""
    chat = inspect.signature(Llama.create_chat_completion).parameters
    completion = inspect.signature(Llama.create_completion).parameters
    return tuple(
        (name, p.default)
        for name, p in chat.items()
        if name in completion
        and name not in ("self", "logprobs", "stream")
        and p.default != completion[name].default
    )


def sampling_arguments(llm: Llama, sampling: Sampling) -> dict[str, Any]:
    """llama-cpp-python keyword arguments for the sampling settings that were given; an
    InputError for logit_bias on a token outside the vocabulary."""
    kwargs = sampling_fields(sampling)
    if sampling.logit_bias:
        in_vocabulary(list(sampling.logit_bias), llm.n_vocab(), "logit_bias")
        kwargs["logit_bias"] = dict(sampling.logit_bias)
    return kwargs


def prompt_tokens(llm: Llama, prompt: str | list[int], suffix: str | None = None) -> list[int]:
    """A `_create_completion` prompt as tokens. With a suffix, the model's fill-in-the-middle
    layout, as llama-server's infill builds it: [bos] FIM_PRE prompt FIM_SUF suffix FIM_MID.

    Raises InputError (param "suffix") when the model has no fill-in-the-middle tokens."""
    return _framed(llm, prompt, suffix)[0]


def _framed(llm: Llama, prompt: str | list[int], suffix: str | None) -> tuple[list[int], slice]:
    """prompt_tokens(), and where the prompt's own tokens lie among them (without the BOS,
    EOS or fill-in-the-middle tokens around them)."""
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
        tokens = [*bos, fim[0], *text, fim[1], *after, fim[2]]
        return tokens, slice(len(bos) + 1, len(bos) + 1 + len(text))
    if not isinstance(prompt, str):
        return list(prompt), slice(0, len(prompt))
    text = llm.tokenize(prompt.encode(), add_bos=False, special=True)
    return bos + text + eos, slice(len(bos), len(bos) + len(text))


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
    # The prompt tokens whose logprobs come before the generated ones (an echo with logprobs)
    scored: slice | None = None
    # A chat's reply reader: it splits the deltas, may end the generation, forces tokens
    reply: ChatReply | None = None
    # A prompt with images (vision.MediaPrompt): read whole by mtmd, never from the cache
    media: Any = None
    truncated: Truncated | None = None  # the prompt was cut to fit the context (context.py)


def plan(
    llm: Llama,
    args: dict[str, Any],
    param: str,
    logprobs: int | None = None,
    special: bool = False,
    limit: int | None = None,
) -> Generation:
    """A Generation from `_create_completion` arguments. max_tokens None (or negative, as
    llama-cpp-python reads it) runs to the end of the context; 0 generates nothing. An echo
    with logprobs scores the prompt's own tokens. Raises InputError (code
    context_length_exceeded) for a prompt longer than `limit` (context.prompt_limit; None:
    the `error` policy's, n_ctx - 1), or for a suffix the model cannot take."""
    prompt, own = _framed(llm, args["prompt"], args["suffix"])
    n_ctx = llm.n_ctx()
    if len(prompt) > (limit if limit is not None else prompt_limit(n_ctx, None, "error")):
        raise too_long(len(prompt), n_ctx, param)
    max_tokens = args["max_tokens"]
    if max_tokens is None or max_tokens < 0:
        max_tokens = n_ctx
    stop = args["stop"]
    stop = stop if isinstance(stop, list) else [stop] if isinstance(stop, str) else []
    echo = ""
    if args["echo"]:
        text = args["prompt"]
        echo = (
            text
            if isinstance(text, str)
            else llm.detokenize(text, special=True).decode(errors="ignore")
        )
    scored = own if args["echo"] and logprobs is not None else None
    limit = min(max_tokens, n_ctx - len(prompt))
    return Generation(args, prompt, limit, stop, logprobs, special, echo, scored)


def completion_generation(
    llm: Llama, request: CompletionRequest, overflow: str = "error"
) -> Generation:
    """A completion request planned as a Generation on `llm` (either path runs it), a prompt
    longer than the context cut by the policy `overflow` and the request's `truncation` give
    (context.py). Raises InputError for an empty prompt, a token id outside the vocabulary,
    or a prompt that does not fit."""
    if not request.prompt:
        raise InputError("prompt must not be empty", "prompt")
    if not isinstance(request.prompt, str):
        in_vocabulary(list(request.prompt), llm.n_vocab(), "prompt")
    kwargs = {**completion_fields(request), **sampling_arguments(llm, request.sampling)}
    args = arguments(llm, False, kwargs, "prompt")
    policy = policy_of(overflow, request.truncation)
    n_ctx = llm.n_ctx()
    limit = prompt_limit(n_ctx, args["max_tokens"], policy)
    tokens, own = _framed(llm, args["prompt"], args["suffix"])
    if len(tokens) <= limit or policy == "error":
        return plan(llm, args, "prompt", request.logprobs, limit=limit)
    cut = cut_completion(tokens, own, limit, policy, n_ctx)
    # With a suffix the prompt's own tokens are framed again; without, the prompt is taken
    # as the tokens it now is (BOS included).
    mine = cut[own.start : len(cut) - (len(tokens) - own.stop)]
    args = {**args, "prompt": mine if args["suffix"] is not None else cut}
    gen = plan(llm, args, "prompt", request.logprobs, limit=limit)
    return replace(gen, truncated=Truncated(policy, len(tokens) - len(cut)))


def marked(deltas: Iterator[TextDelta], truncated: Truncated | None) -> Iterator[TextDelta]:
    """A generation's deltas, the first and the last (with usage) saying how its prompt was
    cut, when it was: the first so a server can say it in a header before the body."""
    first = True
    for delta in deltas:
        if truncated is not None and (first or delta.usage is not None):
            delta = replace(delta, truncated=truncated)
        first = False
        yield delta


class Marking:
    """`marked` for the batching engine: its generation is planned, and its deltas emitted,
    on the engine's thread."""

    def __init__(self, prepare: Callable[[], Generation], emit: Emit) -> None:
        self._prepare, self._emit = prepare, emit
        self._truncated: Truncated | None = None
        self._first = True

    @classmethod
    def of(
        cls, prepare: Callable[[], Generation], emit: Emit
    ) -> tuple[Callable[[], Generation], Emit]:
        """The (prepare, emit) pair to submit in their stead."""
        marking = cls(prepare, emit)
        return marking.prepare, marking.emit

    def prepare(self) -> Generation:
        gen = self._prepare()
        self._truncated = gen.truncated
        return gen

    def emit(self, item: TextDelta | BaseException | None) -> None:
        if isinstance(item, TextDelta) and self._truncated is not None:
            if self._first or item.usage is not None:
                item = replace(item, truncated=self._truncated)
            self._first = False
        self._emit(item)
