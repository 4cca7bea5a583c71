"""The tiny vision pair tests build: llama.cpp's mtmd loads its projector and reads images."""

from __future__ import annotations

import pytest
from support.tiny_vision import IMAGE_TOKENS, build_tiny_vision_pair, mtmd_available, png_data_url

pytestmark = pytest.mark.skipif(not mtmd_available(), reason="llama-cpp-python without mtmd")


@pytest.fixture(scope="module")
def llm(tmp_path_factory):
    import llama_cpp
    from llama_cpp.llama_chat_format import MTMDChatHandler

    model, mmproj = build_tiny_vision_pair(tmp_path_factory.mktemp("vision"))
    handler = MTMDChatHandler(str(mmproj), verbose=False, use_gpu=False)
    llm = llama_cpp.Llama(str(model), chat_handler=handler, n_ctx=1024, verbose=False)
    yield llm
    llm.close()


def ask(llm, *images: str) -> tuple[int, str]:
    parts = [{"type": "text", "text": "hi"}]
    parts += [{"type": "image_url", "image_url": {"url": url}} for url in images]
    reply = llm.create_chat_completion(
        messages=[{"role": "user", "content": parts}], max_tokens=8, temperature=0
    )
    return reply["usage"]["prompt_tokens"], reply["choices"][0]["message"]["content"]


def test_the_projector_is_small(tmp_path):
    _, mmproj = build_tiny_vision_pair(tmp_path)
    assert mmproj.stat().st_size < 200_000


def test_each_image_adds_the_projectors_tokens(llm):
    alone, _ = ask(llm)
    assert ask(llm, png_data_url((200, 0, 0)))[0] == alone + IMAGE_TOKENS
    two = ask(llm, png_data_url((200, 0, 0)), png_data_url((0, 0, 200)))[0]
    assert two == alone + 2 * IMAGE_TOKENS


def test_the_same_image_gives_the_same_reply_and_another_another(llm):
    red, green = png_data_url((200, 0, 0)), png_data_url((10, 200, 30))
    assert ask(llm, red)[1] == ask(llm, red)[1]
    assert ask(llm, red)[1] != ask(llm, green)[1]
