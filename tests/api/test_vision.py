"""Vision through llama.cpp's mtmd, in process: a model with an `mmproj` says so, and reads
images in chat; one without refuses them."""

from __future__ import annotations

import base64

import pytest
from support.inprocess import InProcessApp
from support.tiny_vision import IMAGE_TOKENS, mtmd_available, png_data_url

pytestmark = pytest.mark.skipif(not mtmd_available(), reason="llama-cpp-python without mtmd")


def test_models_list_says_which_model_reads_images(vision_app):
    cards = {m["id"]: m for m in vision_app.client().get("/v1/models").json()["data"]}
    assert cards["eyes"]["vision"] is True
    assert cards["blind"]["vision"] is False
    assert cards["eyes"]["state"] == "READY"  # loaded: the facts are the runtime's own


PNG_START = base64.b64decode(png_data_url((1, 2, 3)).split(",", 1)[1])[:40]  # a cut PNG
RED, GREEN = png_data_url((200, 0, 0)), png_data_url((10, 200, 30))


def image_part(url: str) -> dict:
    return {"type": "image_url", "image_url": {"url": url}}


def chat(app: InProcessApp, model: str, *images: str, **extra: object):
    parts: list[dict] = [{"type": "text", "text": "What is this?"}]
    parts += [image_part(url) for url in images]
    body = {
        "model": model,
        "messages": [{"role": "user", "content": parts}],
        "max_tokens": 8,
        "temperature": 0,
        **extra,
    }
    return app.client().post("/v1/chat/completions", json=body)


def answer(app: InProcessApp, *images: str) -> tuple[int, str]:
    response = chat(app, "eyes", *images)
    assert response.status_code == 200, response.text
    reply = response.json()
    return reply["usage"]["prompt_tokens"], reply["choices"][0]["message"]["content"]


def test_an_image_adds_the_projectors_tokens_to_prompt_tokens(vision_app):
    alone = answer(vision_app)[0]
    assert answer(vision_app, RED)[0] == alone + IMAGE_TOKENS
    assert answer(vision_app, RED, GREEN)[0] == alone + 2 * IMAGE_TOKENS


def test_the_same_image_gives_the_same_reply_and_another_image_another(vision_app):
    first = answer(vision_app, RED)[1]
    assert answer(vision_app, GREEN)[1] != first  # the cache never mixes the two images
    assert answer(vision_app, RED)[1] == first


def test_bare_base64_is_read_as_a_data_url_is(vision_app):
    assert answer(vision_app, RED.split(",", 1)[1]) == answer(vision_app, RED)


def test_text_chats_still_work_after_images(vision_app):
    before = chat(vision_app, "blind").json()["choices"][0]["message"]["content"]
    answer(vision_app, RED)
    parts = [{"type": "text", "text": "What is this?"}]
    body = {"model": "eyes", "messages": [{"role": "user", "content": parts}], "max_tokens": 8}
    again = vision_app.client().post("/v1/chat/completions", json={**body, "temperature": 0})
    assert again.json()["choices"][0]["message"]["content"] == before


def bad_request(response, param: str, words: str) -> None:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param, error
    assert words in error["message"], error


def test_a_model_without_a_projector_refuses_an_image_naming_its_part(vision_app):
    bad_request(chat(vision_app, "blind", RED), "messages[0].content[1]", "no mmproj")


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("data:image/png;base64,aGVsbG8gd29ybGQ=", "not an image"),  # "hello world"
        (RED[:120], "not valid base64"),  # cut off mid-way
        ("data:image/png;base64," + base64.b64encode(PNG_START).decode(), "not an image"),
        ("https://example.com/cat.png", "fetching images from URLs is off"),
        ("file:///etc/passwd", "fetching images from URLs is off"),
    ],
    ids=["not-an-image", "bad-base64", "corrupt-png", "http-url", "file-url"],
)
def test_bad_images_are_400s_naming_the_part(vision_app, url, words):
    bad_request(chat(vision_app, "eyes", url), "messages[0].content[1]", words)


def test_too_many_images_is_a_400_naming_the_first_one_over(vision_app):
    response = chat(vision_app, "eyes", *[RED] * 9)
    bad_request(response, "messages[0].content[9]", "at most 8")


def test_too_many_pixels_is_a_400(vision_app):
    huge = png_data_url((0, 0, 0), size=(5000, 4000))
    bad_request(chat(vision_app, "eyes", huge), "messages[0].content[1]", "pixels")


def test_the_server_still_serves_after_bad_images(vision_app):
    chat(vision_app, "eyes", "data:image/png;base64,aGVsbG8=")
    assert answer(vision_app, RED)[0] > IMAGE_TOKENS


def test_a_streamed_chat_with_an_image_counts_its_tokens(vision_app):
    parts = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": RED}},
    ]
    stream = vision_app.openai().chat.completions.create(
        model="eyes",
        messages=[{"role": "user", "content": parts}],
        max_tokens=8,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert (chunks[-1].usage.prompt_tokens, text) == answer(vision_app, RED)


def test_the_seldon_route_reads_images_and_refuses_bad_ones_in_openai_shape(vision_app):
    http = vision_app.client()
    parts = [{"type": "text", "text": "What is this?"}]
    body = {"messages": [{"role": "user", "content": parts}], "max_tokens": 8, "temperature": 0}
    good = {**body, "messages": [{"role": "user", "content": [*parts, image_part(RED)]}]}
    reply = http.post("/v2/models/eyes/infer/chat/completions", json=good)
    assert reply.status_code == 200, reply.text
    assert reply.json()["usage"]["prompt_tokens"] == answer(vision_app, RED)[0]
    bad = {**body, "messages": [{"role": "user", "content": [*parts, image_part("aGVsbG8=")]}]}
    refused = http.post("/v2/models/eyes/infer/chat/completions", json=bad)
    bad_request(refused, "messages[0].content[1]", "not an image")


def test_tokenize_counts_an_images_tokens_as_the_chat_does(vision_app):
    parts = [{"type": "text", "text": "What is this?"}, image_part(RED)]
    body = {"model": "eyes", "messages": [{"role": "user", "content": parts}]}
    response = vision_app.client().post("/tokenize", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["count"] == answer(vision_app, RED)[0]


def test_the_models_tab_marks_the_model_that_reads_images(vision_app):
    page = vision_app.client().get("/ui/models")
    assert page.status_code == 200
    rows = {row.split('"')[0]: row for row in page.text.split('data-model="')[1:]}
    assert 'class="cap vision"' in rows["eyes"]
    assert "cap vision" not in rows["blind"]


def respond(app: InProcessApp, model: str, *parts: dict):
    content = [{"type": "input_text", "text": "What is this?"}, *parts]
    body = {"model": model, "input": [{"role": "user", "content": content}]}
    return app.client().post("/v1/responses", json={**body, "max_output_tokens": 8})


def test_the_responses_api_reads_input_image_and_counts_its_tokens(vision_app):
    alone = respond(vision_app, "eyes").json()["usage"]["input_tokens"]
    image = {"type": "input_image", "image_url": RED}
    reply = respond(vision_app, "eyes", image)
    assert reply.status_code == 200, reply.text
    assert reply.json()["usage"]["input_tokens"] == alone + IMAGE_TOKENS


@pytest.mark.parametrize(
    ("model", "url", "param", "words"),
    [
        ("eyes", "https://example.com/a.png", "input", "URLs is off"),
        ("eyes", "data:image/png;base64,@@", "input[0].content[1].image_url", "base64"),
        ("eyes", "data:image/png;base64,aGVsbG8=", "input", "not an image"),
        ("blind", RED, "input", "no mmproj"),
    ],
    ids=["url", "bad-base64", "not-an-image", "no-projector"],
)
def test_the_responses_api_refuses_bad_images_with_400s(vision_app, model, url, param, words):
    response = respond(vision_app, model, {"type": "input_image", "image_url": url})
    bad_request(response, param, words)
