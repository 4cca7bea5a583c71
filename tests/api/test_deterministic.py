"""`deterministic`: the same greedy request gives the same text alone, after a cache hit and
beside other requests, on the tiny model with the batching engine on; the extension field on
chat completions, completions and the Responses API."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from support.configs import model_toml
from support.deterministic import repeats
from support.inprocess import Apps, InProcessApp

NAME = "tiny-batched"


@pytest.fixture(scope="module")
def batched(apps: Apps, tiny_dir: Path) -> Iterator[InProcessApp]:
    """The tiny model with 4 slots and room for the story prompts of its byte-level tokens."""
    config = model_toml(
        NAME, "llama-cpp", f"{tiny_dir}/tiny.gguf", n_ctx=2048, threads=1, parallel=4
    )
    with apps.shared(config) as running:
        yield running


def test_a_deterministic_completion_repeats_after_a_cache_hit_and_beside_others(batched):
    seen = asyncio.run(repeats(batched.async_openai(), NAME))
    assert all(seen.alone) and all(n > 0 for n in seen.cached_tokens)
    assert seen.cached == seen.alone
    assert seen.shared == seen.alone


def test_chat_and_responses_take_deterministic_and_repeat(batched):
    client = batched.openai()
    ask = [{"role": "user", "content": "Tell me about the lighthouse keeper and his lamp."}]

    def chat() -> str | None:
        reply = client.chat.completions.create(
            model=NAME,
            messages=ask,
            max_tokens=12,
            temperature=0,
            extra_body={"deterministic": True},
        )
        return reply.choices[0].message.content

    def respond() -> str:
        reply = client.responses.create(
            model=NAME,
            input=ask,
            max_output_tokens=12,
            temperature=0,
            store=False,
            extra_body={"deterministic": True},
        )
        return reply.output_text

    first_chat, first_response = chat(), respond()
    assert first_chat and first_response
    assert [chat(), chat()] == [first_chat, first_chat]  # the second from the cache
    assert respond() == first_response


@pytest.mark.parametrize("path", ["chat", "completions", "responses"])
def test_deterministic_must_be_a_boolean(batched, path):
    client = batched.openai()
    bad = {"extra_body": {"deterministic": "yes"}}
    with pytest.raises(openai.BadRequestError) as error:
        if path == "chat":
            client.chat.completions.create(
                model=NAME, messages=[{"role": "user", "content": "Hi"}], **bad
            )
        elif path == "completions":
            client.completions.create(model=NAME, prompt="Hi", **bad)
        else:
            client.responses.create(model=NAME, input="Hi", **bad)
    assert "deterministic" in str(error.value)
    assert client.completions.create(model=NAME, prompt="Hi", max_tokens=2).choices
