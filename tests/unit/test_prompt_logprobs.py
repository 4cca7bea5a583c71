"""A completion's echo with logprobs scores the prompt's own tokens (serial.py), and max_tokens 0
generates nothing, on the serial path and the batching engine alike."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from pathlib import Path

import llama_cpp
import numpy as np
import pytest
from localoip.runtimes.capabilities import CompletionRequest, Sampling
from localoip.runtimes.folding import gather
from localoip.runtimes.llamacpp.runtime import LlamaCppRuntime
from localoip.runtimes.options import LlamaCppOptions
from support.tiny_models import build_tiny_gguf

PROMPT = "The quick brown fox jumps over the lazy dog, then sleeps."


@pytest.fixture(scope="module", params=[False, True], ids=["no-bos", "bos"])
def gguf(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("scores")
    return build_tiny_gguf(folder / "tiny.gguf", add_bos=request.param)


@pytest.fixture(scope="module")
def runtime(gguf: Path) -> Iterator[LlamaCppRuntime]:
    # 8-token prompt chunks: the prompt is scored over several decode batches
    options = LlamaCppOptions(n_ctx=512, threads=1, prompt_chunk=8, parallel=2)
    runtime = LlamaCppRuntime(str(gguf), options)
    runtime.load()
    yield runtime
    runtime.unload()


def reference(gguf: Path, text: str, flash_attn: bool) -> tuple[list[int], np.ndarray]:
    """The prompt's tokens (BOS included when the model adds one) and every position's
    log-probabilities, from llama-cpp-python's own logits_all evaluation, with flash attention
    as the runtime has it."""
    llm = llama_cpp.Llama(
        str(gguf), n_ctx=512, n_threads=1, logits_all=True, flash_attn=flash_attn, verbose=False
    )
    try:
        tokens = llm.tokenize(text.encode(), add_bos=True)
        llm.eval(tokens)
        logits = np.asarray(llm.scores[: len(tokens)], dtype=np.float64)
    finally:
        llm.close()
    logits -= logits.max(axis=1, keepdims=True)
    return tokens, logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))


def echo(max_tokens: int, k: int | None = 2) -> CompletionRequest:
    sampling = Sampling(max_tokens=max_tokens, temperature=0)
    return CompletionRequest(PROMPT, sampling, echo=True, logprobs=k)


def test_the_prompts_logprobs_are_its_tokens_under_the_model(runtime, gguf):
    result = runtime.complete(echo(0))
    tokens, logprobs = reference(gguf, PROMPT, runtime.options.flash_attn)
    bos = tokens[0] == runtime.llm.token_bos()
    own = tokens[1:] if bos else tokens  # a BOS is no text of the prompt: not listed
    assert (result.text, result.finish_reason) == (PROMPT, "length")
    assert (result.prompt_tokens, result.completion_tokens) == (len(tokens), 0)
    entries = result.logprobs
    assert entries is not None and len(entries) == len(own)
    assert "".join(e.token for e in entries) == PROMPT
    assert entries[0].logprob is None and entries[0].top == ()  # as OpenAI's first entry
    at = 1 + bos  # the first scored token's position
    for i, e in enumerate(entries[1:], start=at):
        assert e.logprob == pytest.approx(logprobs[i - 1][tokens[i]], abs=1e-4)
        assert len(e.top) == 2 and e.top[0][1] == pytest.approx(logprobs[i - 1].max(), abs=1e-4)


def test_an_echo_with_logprobs_generates_as_a_plain_request_does(runtime):
    scored = runtime.complete(echo(6))
    plain = runtime.complete(
        CompletionRequest(PROMPT, Sampling(max_tokens=6, temperature=0), logprobs=2)
    )
    prompt_entries = runtime.complete(echo(0)).logprobs
    assert scored.text == PROMPT + plain.text and scored.completion_tokens == 6
    assert scored.logprobs == prompt_entries + plain.logprobs
    streamed = list(runtime.complete_stream(echo(6)))
    assert streamed[0].text.startswith(PROMPT) and gather(streamed).logprobs == scored.logprobs


@pytest.mark.parametrize("k", [None, 3])
def test_no_tokens_asked_and_no_echo_is_an_empty_length_reply_on_both_paths(runtime, k):
    request = CompletionRequest(PROMPT, Sampling(max_tokens=0, temperature=0), logprobs=k)
    result = runtime.complete(request)
    assert (result.text, result.finish_reason, result.completion_tokens) == ("", "length", 0)
    assert result.logprobs == (None if k is None else ())
    emitted: queue.Queue = queue.Queue()
    assert runtime.complete_batched(request, emitted.put) is not None  # the engine runs it
    deltas = list(iter(lambda: emitted.get(timeout=60), None))
    assert gather(deltas) == result


def test_an_echo_without_logprobs_and_no_tokens_is_the_prompt(runtime):
    request = CompletionRequest(PROMPT, Sampling(max_tokens=0), echo=True)
    assert runtime.complete(request).text == PROMPT
