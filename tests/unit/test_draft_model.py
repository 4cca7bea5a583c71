"""Speculative decoding with a draft model (speculative = "draft"): the sampled acceptance rule
for a draft distribution q, the engine's greedy output with drafts from another model of the
same vocabulary, and a draft of another vocabulary refused at load. Tiny F32 GGUFs built here."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from llama_cpp import _internals as internals
from localoip.runtimes.capabilities import ChatMessage, ChatRequest, Sampling, TextDelta
from localoip.runtimes.folding import gather
from localoip.runtimes.llamacpp.runtime import LlamaCppRuntime
from localoip.runtimes.llamacpp.speculation import draw_for
from localoip.runtimes.options import DraftModel, LlamaCppOptions
from support.tiny_models import build_tiny_gguf

CHI2_3_DOF_999 = 16.27  # chi-square, 3 degrees of freedom: exceeded by chance once in 1000


@pytest.mark.parametrize("top_k", [0, 3])
def test_drafts_from_q_are_kept_with_min_1_p_over_q_and_the_draws_follow_p(top_k):
    """Tokens drafted from a q unlike p, kept with min(1, p/q) and else redrawn from
    max(0, p - q): the tokens drawn are distributed as p (the chain's, after top-k when
    given, so q may draft a token p never gives)."""
    logits = np.array([2.0, 1.0, 0.5, -1.0], np.single)
    kept = 4 if top_k == 0 else top_k
    p = np.zeros(4)
    p[:kept] = np.exp(logits[:kept] - logits.max())
    p /= p.sum()
    q = np.array([0.1, 0.2, 0.3, 0.4])
    chain = internals.LlamaSampler()
    if top_k:
        chain.add_top_k(top_k)
    chain.add_temp(1.0)
    draw = draw_for(chain, seed=5, n_vocab=len(logits))
    drafting = np.random.default_rng(11)
    draws = 20000
    picks = [draw.pick(logits, int(drafting.choice(4, p=q)), q) for _ in range(draws)]
    draw.close()
    counts = np.bincount(picks, minlength=4)
    expected = p * draws
    seen = expected > 0
    assert counts[~seen].sum() == 0
    chi2 = (((counts - expected)[seen]) ** 2 / expected[seen]).sum()
    assert chi2 < CHI2_3_DOF_999, (counts, expected)


def test_a_draft_equal_to_p_is_always_kept():
    logits = np.array([1.0, 0.0, -1.0], np.single)
    p = np.exp(logits - logits.max())
    p /= p.sum()
    chain = internals.LlamaSampler()
    chain.add_temp(1.0)
    draw = draw_for(chain, seed=2, n_vocab=3)
    assert all(draw.pick(logits, t, p) == t for t in (0, 1, 2) * 100)
    draw.close()


# -- the engine ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ggufs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The target, and drafts of its vocabulary: one layer of its weights (agrees with it),
    other attention weights (disagrees), and two of other vocabularies."""
    folder = tmp_path_factory.mktemp("draft")
    return {
        "target": build_tiny_gguf(folder / "target.gguf"),
        "agrees": build_tiny_gguf(folder / "agrees.gguf", name="agrees", n_layer=1),
        "differs": build_tiny_gguf(folder / "differs.gguf", name="differs", attn_std=0.3),
        "runs": build_tiny_gguf(folder / "runs.gguf", name="runs", long_runs=("==",)),
        "dashes": build_tiny_gguf(folder / "dashes.gguf", name="dashes", long_runs=("--",)),
    }


def loaded(target: Path, draft: Path | None, parallel: int = 4) -> LlamaCppRuntime:
    options = LlamaCppOptions(
        n_ctx=512,
        threads=1,
        parallel=parallel,
        speculative="draft" if draft else "off",
        draft=DraftModel(draft.stem, "path", str(draft)) if draft else None,
    )
    runtime = LlamaCppRuntime(str(target), options)
    runtime.load()
    return runtime


@pytest.fixture(scope="module")
def runtimes(ggufs: dict[str, Path]) -> Iterator[dict[str, LlamaCppRuntime]]:
    target = ggufs["target"]
    made = {"off": loaded(target, None)}
    for draft in ("agrees", "differs", "target"):
        made[draft] = loaded(target, ggufs[draft])
    yield made
    for runtime in made.values():
        runtime.unload()


def engine(runtime: LlamaCppRuntime, request: ChatRequest) -> list[TextDelta]:
    items: queue.Queue[TextDelta | BaseException | None] = queue.Queue()
    assert runtime.chat_batched(request, items.put) is not None
    deltas = []
    while (item := items.get(timeout=60)) is not None:
        assert not isinstance(item, BaseException), item
        deltas.append(item)
    return deltas


@pytest.mark.parametrize("topic", ["cats", "the sea", "1 2 3 1 2 3"])
def test_greedy_text_with_a_draft_model_is_the_text_without(runtimes, topic):
    """Token by token (the streamed deltas), whether the draft agrees with the target (every
    draft kept, several tokens a step), disagrees (drafts refused, their cells trimmed) or
    is the target itself."""
    greedy = Sampling(max_tokens=120, temperature=0)
    request = ChatRequest([ChatMessage("user", f"Tell me about {topic}")], greedy)
    plain = [d.text for d in engine(runtimes["off"], request) if d.text]
    for draft in ("agrees", "differs", "target"):
        deltas = engine(runtimes[draft], request)
        assert [d.text for d in deltas if d.text] == plain, draft
        speculation = gather(deltas).speculation
        assert speculation is not None and speculation.drafted > 0, draft
        if draft != "differs":
            assert speculation.accepted == speculation.drafted
            assert speculation.steps < gather(deltas).completion_tokens
    refused = gather(engine(runtimes["differs"], request)).speculation
    assert refused is not None and refused.accepted < refused.drafted


def test_many_sequences_draft_at_once_and_each_keeps_its_text(runtimes):
    greedy = Sampling(max_tokens=80, temperature=0)
    requests = [ChatRequest([ChatMessage("user", f"Say {n}")], greedy) for n in range(6)]
    alone = [gather(engine(runtimes["off"], r)).text for r in requests]
    outputs = [queue.Queue() for _ in requests]
    for request, out in zip(requests, outputs, strict=True):
        assert runtimes["agrees"].chat_batched(request, out.put) is not None
    together = []
    for out in outputs:
        deltas = []
        while (item := out.get(timeout=60)) is not None:
            assert not isinstance(item, BaseException), item
            deltas.append(item)
        together.append(gather(deltas).text)
    assert together == alone


def test_an_unseeded_sampled_request_drafts_from_the_draft_models_distribution(runtimes):
    sampled = Sampling(max_tokens=60, temperature=0.8)
    request = ChatRequest([ChatMessage("user", "Hi")], sampled)
    result = gather(engine(runtimes["agrees"], request))
    assert result.speculation is not None and result.speculation.accepted > 0
    assert result.completion_tokens == 60


@pytest.mark.parametrize("parallel", [4, 1])
@pytest.mark.parametrize(
    ("target", "draft", "why"),
    [
        ("target", "runs", "it has 265 tokens, this model 264"),
        ("runs", "dashes", "the texts of their tokens differ"),
    ],
)
def test_a_draft_of_another_vocabulary_is_refused_at_load(ggufs, target, draft, why, parallel):
    """With the engine or without one (the vocabulary alone is read then)."""
    with pytest.raises(ValueError) as refused:
        loaded(ggufs[target], ggufs[draft], parallel)
    message = str(refused.value)
    assert f"the draft model {draft!r} does not share this model's vocabulary" in message
    assert why in message
