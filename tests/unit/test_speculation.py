"""Speculative decoding: prompt-lookup drafts, their adaptive length, the sampled acceptance
rule, and the engine's greedy output with and without speculation on the tiny F32 GGUF."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from llama_cpp import _internals as internals
from localoip.runtimes.capabilities import (
    ChatMessage,
    ChatRequest,
    CompletionRequest,
    Sampling,
    TextDelta,
)
from localoip.runtimes.folding import gather
from localoip.runtimes.llamacpp.runtime import LlamaCppRuntime
from localoip.runtimes.llamacpp.speculation import LONGEST_WAIT, DraftLength, Ngrams, draw_for
from localoip.runtimes.options import LlamaCppOptions
from support.tiny_models import build_tiny_gguf


def test_a_draft_is_what_followed_the_latest_earlier_occurrence_as_long_as_the_match():
    history = [1, 2, 3, 4, 5, 9, 2, 3, 7, 8, 6, 2, 3]
    # "2 3" last came before 7 8 6 2; two tokens matched, so two are drafted
    assert Ngrams().draft(history, 4) == [7, 8]
    assert Ngrams().draft(history, 1) == [7]
    # a copy that has run six tokens drafts six: a run so far is what predicts the run ahead
    source = [10, 11, 12, 13, 14, 15, 16, 17, 18, 19]
    assert Ngrams().draft([*source, 0, *source[:6]], 8) == [16, 17, 18, 19, 0, 10]


def test_of_a_keys_occurrences_the_one_after_the_same_context_wins():
    # "skipped += 1; continue" is followed by different lines in a function: the one to copy
    # is the occurrence whose lines before it are the ones just written
    history = [10, 11, 12, 2, 3, 4, 40, 20, 21, 2, 3, 4, 50, 30, 10, 11, 12, 2, 3, 4]
    assert Ngrams().draft(history, 3) == [40, 20, 21]  # not the latest: [50, 30, 10]
    history[-4] = 99  # no context in common with either: the latest
    assert Ngrams().draft(history, 2) == [50, 30]


def test_the_longest_key_wins_and_nothing_is_drafted_without_a_match():
    history = [5, 2, 3, 4, 9, 2, 3, 8, 5, 2, 3]
    assert Ngrams().draft(history, 1) == [4]  # "5 2 3" matches, before the later "2 3 8"
    assert Ngrams().draft([1, 2, 3, 4], 4) == []


def test_drafts_follow_a_growing_history_and_stop_before_an_images_keys():
    ngrams = Ngrams()
    history = [1, 2, 3, -7, -7, 4]
    assert ngrams.draft(history, 4) == []
    history += [1, 2]
    assert ngrams.draft(history, 4) == [3]  # an image's positions are never drafted


def test_draft_length_grows_on_hits_shrinks_on_misses_and_waits_after_nothing_gained():
    length = DraftLength(8)
    assert length.now() == 2
    length.verified(2, 2)
    assert length.now() == 4
    length.verified(4, 4)
    length.verified(8, 8)
    assert length.now() == 8  # never past draft_max
    length.verified(8, 3)
    assert length.now() == 3
    length.verified(3, 0)
    assert length.now() == 0  # one step without a draft
    assert length.now() == 1
    waits = []
    for _ in range(8):
        length.verified(1, 0)
        steps = 0
        while length.now() == 0:
            steps += 1
        waits.append(steps)
    assert waits == sorted(waits) and waits[-1] == LONGEST_WAIT


def test_a_point_mass_draft_is_kept_with_its_probability_and_the_draws_follow_p():
    """Keep the drafted token with probability p(draft), else draw from p without it: the
    tokens drawn are distributed as p, whatever was drafted."""
    logits = np.array([2.0, 1.0, 0.5, -1.0], np.single)
    p = np.exp(logits - logits.max())
    p /= p.sum()
    chain = internals.LlamaSampler()
    chain.add_temp(1.0)
    draw = draw_for(chain, seed=3, n_vocab=len(logits))
    for drafted in (0, 1, 3, None):
        counts = np.bincount([draw.pick(logits, drafted) for _ in range(5000)], minlength=4)
        assert counts / counts.sum() == pytest.approx(p, abs=0.03), drafted
    draw.close()


# -- the engine ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_gguf(tmp_path_factory.mktemp("speculation") / "tiny.gguf")


@pytest.fixture(scope="module")
def runtimes(gguf: Path) -> Iterator[dict[str, LlamaCppRuntime]]:
    # Seeded requests are batched too (reproducible=false), to see that they do not speculate.
    loaded = {}
    for mode in ("off", "ngram"):
        options = LlamaCppOptions(
            n_ctx=512, threads=1, parallel=4, speculative=mode, reproducible=False
        )
        loaded[mode] = LlamaCppRuntime(str(gguf), options)
        loaded[mode].load()
    yield loaded
    for runtime in loaded.values():
        runtime.unload()


def engine(runtime: LlamaCppRuntime, request: ChatRequest | CompletionRequest) -> list[TextDelta]:
    items: queue.Queue[TextDelta | BaseException | None] = queue.Queue()
    submit = runtime.chat_batched if isinstance(request, ChatRequest) else runtime.complete_batched
    assert submit(request, items.put) is not None
    deltas = []
    while (item := items.get(timeout=60)) is not None:
        assert not isinstance(item, BaseException), item
        deltas.append(item)
    return deltas


TOPICS = ["cats", "dogs", "the sea", "1 2 3 1 2 3 1 2 3", "x"]


@pytest.mark.parametrize("topic", TOPICS)
def test_greedy_text_is_the_same_with_and_without_speculation(runtimes, topic):
    """The tiny model's replies fall into repeats, which prompt lookup drafts and the engine
    keeps; the text, token by token (the streamed deltas), equals the unspeculated one."""
    greedy = Sampling(max_tokens=120, temperature=0)
    request = ChatRequest([ChatMessage("user", f"Tell me about {topic}")], greedy)
    plain = engine(runtimes["off"], request)
    fast = engine(runtimes["ngram"], request)
    assert [d.text for d in fast if d.text] == [d.text for d in plain if d.text]
    assert gather(plain).speculation is None
    speculation = gather(fast).speculation
    assert speculation is not None and speculation.accepted > 0
    assert speculation.steps < gather(fast).completion_tokens  # more than a token a step


def test_a_request_can_turn_speculation_off(runtimes):
    off = Sampling(max_tokens=60, temperature=0, speculative=False)
    deltas = engine(runtimes["ngram"], CompletionRequest("Tell me about cats", off))
    assert gather(deltas).speculation is None


def test_sampled_and_constrained_sequences_speculate_only_where_exact(runtimes):
    """An unseeded sampled request speculates (its draws keep p); a seeded one draws as the
    serial path does, and a grammar-constrained sampled one is constrained as before."""
    runtime = runtimes["ngram"]
    unseeded = Sampling(max_tokens=60, temperature=0.8)
    assert gather(engine(runtime, CompletionRequest("Hi", unseeded))).speculation is not None
    seeded = Sampling(max_tokens=60, temperature=0.8, seed=4)
    assert gather(engine(runtime, CompletionRequest("Hi", seeded))).speculation is None
    schema = ChatRequest([ChatMessage("user", "Hi")], unseeded, json_schema={})
    assert gather(engine(runtime, schema)).speculation is None
    greedy = Sampling(max_tokens=60, temperature=0)
    greedy_schema = ChatRequest([ChatMessage("user", "Hi")], greedy, json_schema={})
    assert gather(engine(runtime, greedy_schema)).speculation is not None
