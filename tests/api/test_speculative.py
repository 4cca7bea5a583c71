"""Speculative decoding through the OpenAI API and the playground: the same greedy text with
it and without it, streamed and not; `speculative: false` turns it off for one request;
/metrics counts it and the run card shows it."""

from __future__ import annotations

import html
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.configs import model_toml
from support.inprocess import Apps, InProcessApp
from support.playground import conversation_of, reply_of, start_reply
from test_metrics import scrape, value


@pytest.fixture(scope="module")
def app(apps: Apps, tiny_dir: Path) -> Iterator[InProcessApp]:
    """tiny-chat with prompt lookup on (it is off by default), in place of the conftest's app,
    so its `http` and `v1` talk to this one."""
    config = model_toml(
        "tiny-chat", "llama-cpp", f"{tiny_dir}/tiny.gguf", n_ctx=2048, threads=1,
        speculative="ngram",
    )  # fmt: skip
    with apps.shared(config) as running:
        yield running


CHAT = {
    "model": "tiny-chat",
    "messages": [{"role": "user", "content": "Tell me about the sea"}],
    "max_tokens": 100,
    "temperature": 0,
}
COUNTERS = (
    "localoip_speculative_draft_tokens_total",
    "localoip_speculative_accepted_tokens_total",
    "localoip_speculative_steps_total",
    "localoip_speculative_tokens_total",
)


def counts(http) -> dict[str, float]:
    samples = scrape(http)
    return {name: value(samples, name, model="tiny-chat") for name in COUNTERS}


def test_greedy_text_is_the_same_with_speculation_streamed_and_not(v1, http):
    """The tiny model's reply falls into repeats, which prompt lookup drafts and keeps."""
    plain = v1.chat.completions.create(**CHAT, extra_body={"speculative": False})
    before = counts(http)
    fast = v1.chat.completions.create(**CHAT)
    streamed = v1.chat.completions.create(**CHAT, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
    after = counts(http)
    assert fast.choices[0].message.content == plain.choices[0].message.content == text
    gained = {name: after[name] - before[name] for name in COUNTERS}
    drafted, accepted, steps, tokens = gained.values()
    assert 0 < accepted <= drafted
    assert tokens == 2 * fast.usage.completion_tokens
    assert steps < tokens  # more than one token a decode step


def test_a_request_with_speculative_false_is_not_counted(v1, http):
    before = counts(http)
    v1.completions.create(
        model="tiny-chat",
        prompt="Tell me about cats",
        max_tokens=60,
        temperature=0,
        extra_body={"speculative": False},
    )
    assert counts(http) == before


def test_speculative_must_be_a_boolean(http):
    reply = http.post("/v1/chat/completions", json={**CHAT, "speculative": "yes"})
    assert reply.status_code == 400
    assert "speculative" in reply.text


def check_run_card(http, model: str) -> None:
    """A greedy playground reply of `model`, which speculates: its run card gives the drafts
    kept and the tokens a decode step, as stored with the reply."""
    job = start_reply(http, 60, model, message="Tell me about the sea", temperature="0")
    reply = reply_of(http, conversation_of(http, job))
    meta = reply["meta"]
    assert 0 < meta["accepted_tokens"] <= meta["draft_tokens"]
    assert meta["decode_steps"] < meta["completion_tokens"]
    card = html.unescape(http.get(f"/ui/runs/{reply['id']}").text)
    assert f"{meta['accepted_tokens']} of {meta['draft_tokens']} drafted tokens kept" in card
    assert "tokens a decode step" in card


def test_a_run_card_says_what_speculative_decoding_did(http):
    check_run_card(http, "tiny-chat")
