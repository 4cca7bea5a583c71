"""Speculative decoding with a draft model through the OpenAI API: the same greedy text with it
and without it, streamed and not; /metrics and the run card count its drafts; a draft of
another vocabulary leaves the model unavailable with the reason."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest
from openai import OpenAI
from support.configs import model_toml
from support.inprocess import Apps, InProcessApp
from support.tiny_models import build_tiny_gguf
from test_metrics import scrape, value
from test_speculative import check_run_card


@pytest.fixture(scope="module")
def drafting(apps: Apps, tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessApp]:
    """`drafted` drafts with `small` (one layer of its weights, its vocabulary); `mismatched`
    has another vocabulary (a token more) and names `small` too."""
    folder = tmp_path_factory.mktemp("drafting")
    target = build_tiny_gguf(folder / "target.gguf")
    small = build_tiny_gguf(folder / "small.gguf", name="small", n_layer=1)
    other = build_tiny_gguf(folder / "other.gguf", name="other", long_runs=("==",))
    common = {"n_ctx": 2048, "threads": 1}
    config = (
        model_toml(
            "drafted", "llama-cpp", str(target), speculative="draft", draft="small", **common
        )
        + model_toml("small", "llama-cpp", str(small), **common)
        + model_toml(
            "mismatched", "llama-cpp", str(other), speculative="draft", draft="small", **common
        )
    )
    with apps.shared(config) as running:
        yield running


@pytest.fixture
def http(drafting: InProcessApp) -> Iterator[httpx.Client]:
    with drafting.client() as client:
        yield client


@pytest.fixture
def v1(drafting: InProcessApp) -> OpenAI:
    return drafting.openai()


CHAT = {
    "model": "drafted",
    "messages": [{"role": "user", "content": "Tell me about the sea"}],
    "max_tokens": 100,
    "temperature": 0,
}


def counted(http: httpx.Client, name: str) -> float:
    return value(scrape(http), f"localoip_speculative_{name}_total", model="drafted")


def test_greedy_text_is_the_same_with_a_draft_model_streamed_and_not(v1, http):
    plain = v1.chat.completions.create(**CHAT, extra_body={"speculative": False})
    before = {name: counted(http, name) for name in ("draft_tokens", "accepted_tokens", "steps")}
    fast = v1.chat.completions.create(**CHAT)
    streamed = v1.chat.completions.create(**CHAT, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
    assert fast.choices[0].message.content == plain.choices[0].message.content == text
    drafted, accepted, steps = (counted(http, name) - before[name] for name in before)
    assert 0 < accepted <= drafted
    assert steps < 2 * fast.usage.completion_tokens  # more than one token a decode step


def test_a_completion_drafts_too(v1, http):
    before = counted(http, "draft_tokens")
    body = {"model": "drafted", "prompt": "Tell me about cats", "max_tokens": 60, "temperature": 0}
    fast = v1.completions.create(**body)
    plain = v1.completions.create(**body, extra_body={"speculative": False})
    assert fast.choices[0].text == plain.choices[0].text
    assert counted(http, "draft_tokens") > before


def test_a_draft_of_another_vocabulary_leaves_the_model_unavailable_with_the_reason(v1, http):
    with pytest.raises(openai.APIStatusError) as refused:
        v1.chat.completions.create(**{**CHAT, "model": "mismatched"})
    assert refused.value.status_code == 503
    message = str(refused.value)
    assert "the draft model 'small' does not share this model's vocabulary" in message
    assert "it has 264 tokens, this model 265" in message
    assert v1.chat.completions.create(**CHAT).choices[0].message.content  # still serving


def test_a_run_card_says_what_the_draft_model_did(http):
    check_run_card(http, "drafted")
