"""The prefix cache keyed on images, on both paths (the serial one, `parallel = 1`, and the
batching engine's slots): the same image is matched and not encoded again, another image never
matches past its start, and the text before an image is reused by any prompt."""

from __future__ import annotations

import asyncio
import base64
import io
from collections.abc import Iterator

import numpy as np
import pytest
from openai import AsyncOpenAI
from support.configs import model_toml
from support.inprocess import InProcessApp
from support.tiny_vision import IMAGE_TOKENS, build_tiny_vision_pair, mtmd_available

pytestmark = pytest.mark.skipif(not mtmd_available(), reason="llama-cpp-python without mtmd")

PATHS = ["serial", "engine"]  # model names: parallel 1, and 4 slots


@pytest.fixture(scope="module")
def seeing(apps, tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessApp]:
    model, mmproj = build_tiny_vision_pair(tmp_path_factory.mktemp("vision"))

    # flash attention off: with it a row's numbers depend on the other rows of its step (its
    # CPU kernel sums in F16), and this random model's near ties then flipped one reply in a
    # batch once in six runs; these tests are about what the slots keep apart
    def eyes(name: str, parallel: int) -> str:
        return model_toml(
            name, "llama-cpp", str(model), n_ctx=1024, threads=1, mmproj=str(mmproj),
            parallel=parallel, flash_attn=False,
        )  # fmt: skip

    with apps.shared(eyes("serial", 1) + eyes("engine", 4)) as running:
        yield running


def picture(seed: int) -> str:
    """A PNG of random pixels as a data URL: each seed another image (solid colours can look
    alike to a random model)."""
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def user(text: str, *images: str) -> dict:
    parts: list[dict] = [{"type": "text", "text": text}]
    parts += [{"type": "image_url", "image_url": {"url": url}} for url in images]
    return {"role": "user", "content": parts}


def ask(app: InProcessApp, model: str, messages: list[dict]) -> tuple[str, int, int]:
    """The greedy reply, prompt_tokens and cached_tokens."""
    reply = app.openai().chat.completions.create(
        model=model, messages=messages, max_tokens=8, temperature=0
    )
    usage = reply.usage
    return reply.choices[0].message.content, usage.prompt_tokens, cached(usage)


def cached(usage) -> int:
    details = usage.prompt_tokens_details
    return details.cached_tokens if details is not None else 0


def image_start(app: InProcessApp, model: str, text: str, image: str) -> int:
    """Where the image's positions begin in `user(text, image)`'s prompt (/tokenize: the
    prompt with the image, against the prompt without it)."""

    def tokens(message: dict) -> list[int]:
        body = {"model": model, "messages": [message]}
        response = app.client().post("/tokenize", json=body)
        assert response.status_code == 200, response.text
        return response.json()["tokens"]

    alone, seen = tokens(user(text)), tokens(user(text, image))
    assert len(seen) == len(alone) + IMAGE_TOKENS
    return next(i for i, (a, b) in enumerate(zip(alone, seen, strict=False)) if a != b)


@pytest.mark.parametrize("model", PATHS)
def test_the_same_image_again_is_served_from_the_cache_with_the_same_reply(seeing, model):
    text = f"Look at this ({model}, 1):"
    start = image_start(seeing, model, text, picture(1))
    first, prompt_tokens, _ = ask(seeing, model, [user(text, picture(1))])
    other = ask(seeing, model, [user(text, picture(2))])
    assert other[0] != first  # the same text with another image: another reply
    assert other[2] <= start  # never matched past the image's start
    again = ask(seeing, model, [user(text, picture(1))])
    served = ask(seeing, model, [user(text, picture(1))])  # right after itself: from the cache
    assert served[2] >= start + IMAGE_TOKENS  # the image's cells reused, not encoded again
    assert first == again[0] == served[0]
    assert prompt_tokens == again[1] == served[1]


@pytest.mark.parametrize("model", PATHS)
def test_a_second_turn_about_the_same_image_reuses_the_image(seeing, model):
    text = f"What is in this picture ({model}, 2)?"
    start = image_start(seeing, model, text, picture(3))
    turn = [user(text, picture(3))]
    reply, first_prompt, _ = ask(seeing, model, turn)
    turn2 = [*turn, {"role": "assistant", "content": reply}, user("And the colours?")]
    answer, prompt_tokens, reused = ask(seeing, model, turn2)
    assert start + IMAGE_TOKENS <= reused < prompt_tokens  # the image read once, on turn 1
    assert prompt_tokens > first_prompt
    # the same turn with another image stops the cached count before the image
    other = [user(text, picture(4)), {"role": "assistant", "content": reply}, user("And?")]
    assert ask(seeing, model, other)[2] <= start
    # and the second turn, its image read afresh now, answers as it did from the cache
    ask(seeing, model, [user(f"Something else entirely ({model})")])
    assert ask(seeing, model, turn2)[0] == answer


@pytest.mark.parametrize("model", PATHS)
def test_a_text_chat_after_an_image_chat_reuses_the_text_before_the_image(seeing, model):
    text = f"Here is a long preamble about a picture we will discuss ({model}, 3):"
    start = image_start(seeing, model, text, picture(5))
    ask(seeing, model, [user(text, picture(5))])
    reply, _, reused = ask(seeing, model, [user(text)])
    assert 0 < reused <= start
    assert reply == ask(seeing, model, [user(text)])[0]


@pytest.mark.parametrize("model", PATHS)
def test_alternating_two_images_never_mixes_them(seeing, model):
    text = f"Compare ({model}, 4):"
    a, b = picture(6), picture(7)
    replies = [ask(seeing, model, [user(text, image)])[0] for image in (a, b, a, b, a)]
    assert replies[0] == replies[2] == replies[4]
    assert replies[1] == replies[3]
    assert replies[0] != replies[1]


def test_the_engine_batches_image_and_text_chats_each_with_its_reply_alone(seeing):
    """Image chats and text chats at once in the engine's slots: each greedy reply is the one
    it gives alone, and the one the serial path gives."""
    chats = [
        [user(f"Batch {i}: what is here?", picture(10 + i))] if i % 2 else [user(f"Batch {i}")]
        for i in range(8)
    ]

    async def one(client: AsyncOpenAI, model: str, messages: list[dict]) -> tuple:
        reply = await client.chat.completions.create(
            model=model, messages=messages, max_tokens=16, temperature=0
        )
        return reply.choices[0].message.content, reply.usage.prompt_tokens

    async def run() -> tuple[list, list, list]:
        client = seeing.async_openai()
        serial = [await one(client, "serial", m) for m in chats]
        alone = [await one(client, "engine", m) for m in chats]
        ask(seeing, "engine", [user("flush the slots")])
        together = await asyncio.gather(*(one(client, "engine", m) for m in chats))
        return serial, alone, list(together)

    serial, alone, together = asyncio.run(run())
    assert "continuous batching over 4 slots" in seeing.logs()
    assert together == alone == serial
    assert all(text for text, _ in together)


def test_concurrent_image_streams_all_complete(seeing):
    """Streams with images and without, at once in the engine: each ends with a finish reason
    and the text and usage of the same chat not streamed."""
    chats = [[user(f"Stream {i}", picture(20 + i // 2))] for i in range(6)]
    chats += [[user(f"Plain stream {i}")] for i in range(4)]

    async def streamed(client: AsyncOpenAI, messages: list[dict]) -> tuple:
        stream = await client.chat.completions.create(
            model="engine", messages=messages, max_tokens=8, temperature=0, stream=True,
            stream_options={"include_usage": True},
        )  # fmt: skip
        text, finish, usage = "", None, None
        async for chunk in stream:
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
                finish = chunk.choices[0].finish_reason or finish
            usage = chunk.usage or usage
        return text, finish, usage.prompt_tokens

    async def run() -> list:
        client = seeing.async_openai()
        return list(await asyncio.gather(*(streamed(client, m) for m in chats)))

    for (text, finish, prompt_tokens), messages in zip(asyncio.run(run()), chats, strict=True):
        assert finish in ("stop", "length")
        assert (text, prompt_tokens) == ask(seeing, "engine", messages)[:2]


@pytest.mark.parametrize("model", PATHS)
def test_a_seeded_image_chat_reproduces_whatever_the_cache_holds(seeing, model):
    """Sampled with a seed (run one at a time, on the model's own context): the same reply
    read afresh, from a cache that stops before the image, and from one that holds it."""
    text = f"Tell me a story about this ({model}, 5)."

    def sampled(*messages: dict) -> tuple[str, int]:
        reply = seeing.openai().chat.completions.create(
            model=model, messages=list(messages), max_tokens=24, temperature=1.5, seed=11
        )
        return reply.choices[0].message.content, cached(reply.usage)

    sampled(user("Unrelated, to clear the way."))
    fresh, _ = sampled(user(text, picture(30)))
    sampled(user(text, picture(31)))
    partly, before = sampled(user(text, picture(30)))
    whole, held = sampled(user(text, picture(30)))
    assert fresh == partly == whole
    assert 0 < before < held
