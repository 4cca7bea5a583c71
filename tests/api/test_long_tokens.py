"""A token longer than 32 bytes keeps its text on every path: generated text and logprobs,
serial and batched, chat and completion, echo with and without logprobs, and
/tokenize and /detokenize (llama-cpp-python 0.3.36 alone gives such a token "")."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from openai import OpenAI
from support.configs import model_toml
from support.inprocess import Apps, InProcessApp
from support.tiny_models import build_tiny_gguf

LONG = "=" * 64
MODELS = ["long-serial", "long-batched"]


@pytest.fixture(scope="module")
def long_app(apps: Apps, tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessApp]:
    """The tiny model with a 64-byte token, one thread, alone and on a batching engine."""
    path = build_tiny_gguf(
        tmp_path_factory.mktemp("long") / "long.gguf", name="long-tokens", long_runs=(LONG,)
    )
    config = model_toml(
        "long-serial", "llama-cpp", str(path), n_ctx=512, threads=1, parallel=1
    ) + model_toml("long-batched", "llama-cpp", str(path), n_ctx=512, threads=1, parallel=2)
    with apps.shared(config) as app:
        yield app


@pytest.fixture(scope="module")
def http(long_app: InProcessApp) -> Iterator[httpx.Client]:
    with long_app.client() as client:
        yield client


@pytest.fixture(scope="module")
def v1(long_app: InProcessApp) -> OpenAI:
    return long_app.openai()


@pytest.fixture(scope="module")
def long_id(http: httpx.Client) -> int:
    """The long token's id: its text tokenizes to it alone."""
    reply = http.post("/tokenize", json={"model": "long-serial", "prompt": LONG})
    assert reply.status_code == 200, reply.text
    [token] = reply.json()["tokens"]
    return token


def pushed(long_id: int) -> dict:
    """Sampling that makes the long token the greedy choice."""
    return {"temperature": 0, "logit_bias": {str(long_id): 100}}


@pytest.mark.parametrize("model", MODELS)
def test_a_completion_of_long_tokens_has_their_text_and_logprob_tokens(v1, long_id, model):
    reply = v1.completions.create(
        model=model, prompt="hi", max_tokens=3, logprobs=2, **pushed(long_id)
    )
    choice = reply.choices[0]
    assert choice.text == LONG * 3
    assert choice.logprobs.tokens == [LONG] * 3
    assert all(next(iter(top)) == LONG for top in choice.logprobs.top_logprobs)
    streamed = v1.completions.create(
        model=model, prompt="hi", max_tokens=3, stream=True, **pushed(long_id)
    )
    assert "".join(c.choices[0].text for c in streamed) == LONG * 3


@pytest.mark.parametrize("model", MODELS)
def test_a_chat_of_long_tokens_has_their_text_bytes_and_top_logprobs(v1, long_id, model):
    reply = v1.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "hi"}],
        max_tokens=2,
        logprobs=True,
        top_logprobs=1,
        **pushed(long_id),
    )
    assert reply.choices[0].message.content == LONG * 2
    for entry in reply.choices[0].logprobs.content:
        assert entry.token == LONG and entry.bytes == list(LONG.encode())
        assert entry.top_logprobs[0].token == LONG
    streamed = v1.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "hi"}],
        max_tokens=2,
        stream=True,
        **pushed(long_id),
    )
    assert "".join(c.choices[0].delta.content or "" for c in streamed) == LONG * 2


@pytest.mark.parametrize("model", MODELS)
def test_an_echo_keeps_the_long_tokens_of_prompt_and_reply(v1, long_id, model):
    reply = v1.completions.create(
        model=model, prompt=LONG + "hi", max_tokens=2, echo=True, **pushed(long_id)
    )
    assert reply.choices[0].text == LONG + "hi" + LONG * 2


def test_an_echo_with_logprobs_keeps_the_long_token(v1, long_id):
    """Echo with logprobs scores the prompt on our side (it ran through llama-cpp-python's
    create_completion, whose 32-byte pieces dropped it, and whose entries were one short)."""
    reply = v1.completions.create(
        model="long-serial",
        prompt=LONG + "hi",
        max_tokens=2,
        echo=True,
        logprobs=1,
        **pushed(long_id),
    )
    choice = reply.choices[0]
    assert choice.text == LONG + "hi" + LONG * 2
    assert choice.logprobs.tokens == [LONG, "h", "i", LONG, LONG]


def test_detokenize_gives_long_tokens_their_text(http, long_id):
    reply = http.post("/detokenize", json={"model": "long-serial", "tokens": [long_id] * 2})
    assert reply.status_code == 200, reply.text
    assert reply.json()["prompt"] == LONG * 2
    tokenized = http.post(
        "/tokenize", json={"model": "long-serial", "prompt": LONG, "return_token_strs": True}
    )
    assert tokenized.json()["token_strs"] == [LONG]
