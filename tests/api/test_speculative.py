"""Speculative decoding through the OpenAI API: the same greedy text with it and without it,
streamed and not; `speculative: false` turns it off for one request; /metrics counts it."""

from __future__ import annotations

from test_metrics import scrape, value

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
    """tiny-chat speculates by default (prompt lookup); its reply falls into repeats, which
    are drafted and kept."""
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
