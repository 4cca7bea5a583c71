"""Images in requests: decoded from data URLs and base64, other URLs kept for the server to
fetch, placed in a message's text by one rule, and passed on (or refused) by the remote
runtimes, never dropped."""

from __future__ import annotations

import base64

import pytest
from localoip.runtimes.capabilities import (
    IMAGE_MARKER,
    ChatImage,
    ChatMessage,
    InputError,
    refuse_images,
)
from localoip.runtimes.options import LlamaCppOptions
from localoip.runtimes.remote.openai import _message
from localoip.runtimes.wire.images import (
    ImageText,
    base64_image,
    image_type,
    images_first,
    pictures,
    url_image,
)
from localoip.runtimes.wire.openai.requests import ChatCompletionRequest, chat_request
from msgspec import convert

PNG = b"\x89PNG\r\n\x1a\n" + b"rest"
URL = "data:image/png;base64," + base64.b64encode(PNG).decode()


def test_a_data_url_and_bare_base64_give_the_same_bytes():
    assert url_image(URL, "p") == url_image(URL.split(",", 1)[1], "p") == ChatImage(PNG, "p")


@pytest.mark.parametrize(
    "url", ["http://example.com/a.png", "https://example.com/a.png", "file:///etc/passwd"]
)
def test_other_urls_are_kept_for_the_server_to_fetch_or_refuse(url):
    assert url_image(url, "p") == ChatImage(b"", "p", url=url)


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("data:image/png,rawtext", "data:<type>;base64,<data>"),
        ("data:image/png;base64,@@@", "not valid base64"),
        ("", "empty"),
    ],
)
def test_what_is_not_an_inline_image_is_refused_by_name(url, words):
    with pytest.raises(InputError, match=words) as caught:
        url_image(url, "messages[0].content[1]")
    assert caught.value.param == "messages[0].content[1]"


def test_base64_images_are_strict_base64():
    assert base64_image(URL.split(",", 1)[1], "images[0]") == PNG
    with pytest.raises(InputError, match="not valid base64") as caught:
        base64_image("http://example.com/a.png", "images[0]")
    assert caught.value.param == "images[0]"


def test_images_beside_a_text_stand_before_it():
    images = [ChatImage(PNG, "images[0]"), ChatImage(PNG, "images[1]")]
    text, kept = images_first("what?", images, "content")
    assert (text, kept) == (f"{IMAGE_MARKER}{IMAGE_MARKER}what?", tuple(images))
    assert images_first("what?", [], "content") == ("what?", ())
    with pytest.raises(InputError, match="must not contain") as caught:
        images_first(IMAGE_MARKER, images, "content")
    assert caught.value.param == "content"


def test_a_chat_message_keeps_its_images_and_a_marker_where_each_stood():
    body = {
        "model": "m",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "a"},
                    {"type": "image_url", "image_url": {"url": URL}},
                    {"type": "text", "text": "b"},
                    {"type": "image_url", "image_url": URL},
                ],
            }
        ],
    }
    message = chat_request(convert(body, ChatCompletionRequest)).messages[0]
    assert message.content == f"a{IMAGE_MARKER}b{IMAGE_MARKER}"
    assert [i.param for i in message.images] == ["messages[0].content[1]", "messages[0].content[3]"]
    assert {i.data for i in message.images} == {PNG}


def test_the_marker_cannot_be_typed_in_a_text_part():
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": [{"type": "text", "text": IMAGE_MARKER}]}],
    }
    with pytest.raises(InputError, match="must not contain"):
        chat_request(convert(body, ChatCompletionRequest))


def test_the_remote_openai_runtime_passes_images_on_as_data_urls():
    message = ChatMessage("user", f"look{IMAGE_MARKER}", images=(ChatImage(PNG, "p"),))
    assert _message(message)["content"] == [
        {"type": "text", "text": "look"},
        {"type": "image_url", "image_url": {"url": URL}},
    ]


def test_a_fetched_url_image_goes_upstream_as_its_url_and_never_reaches_a_model_unfetched():
    named = ChatImage(b"", "messages[0].content[0]", url="https://example.com/cat.png")
    message = ChatMessage("user", IMAGE_MARKER, images=(named,))
    assert _message(message)["content"] == [
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    ]
    limits = LlamaCppOptions()
    with pytest.raises(InputError, match="unfetched") as caught:
        pictures([named], limits)
    assert caught.value.param == "messages[0].content[0]"


def test_runtimes_that_read_no_images_refuse_the_first_by_name():
    messages = [ChatMessage("user", IMAGE_MARKER, images=(ChatImage(PNG, "input[0]"),))]
    with pytest.raises(InputError, match="reads no images") as caught:
        refuse_images(messages, "text only")
    assert caught.value.param == "input[0]"
    refuse_images([ChatMessage("user", "hi")], "text only")  # no images: nothing to refuse


def test_image_types_are_told_from_their_first_bytes():
    assert image_type(PNG) == "image/png"
    assert image_type(b"\xff\xd8\xff\xe0") == "image/jpeg"
    assert image_type(b"RIFF\0\0\0\0WEBPVP8 ") == "image/webp"
    assert image_type(b"hello") == "application/octet-stream"


def test_an_image_between_texts_adds_only_its_marker_whatever_the_separator():
    parts = ImageText()
    parts.add_text("a", "0")
    parts.add_image(ChatImage(PNG, "1"))
    parts.add_text("b", "2")
    parts.add_text("c", "3")
    assert parts.text("\n") == f"a{IMAGE_MARKER}b\nc"
