"""Images in the playground's chat, in process: an attached image goes to the model with its
message, is shown in the turn, kept once by its SHA-256 (branches, regenerated replies and
other conversations reuse it, and it goes with the last conversation that carries it), and
travels in the exports and the run card; images a model cannot take are refused in words."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.configs import model_toml
from support.inprocess import InProcessApp
from support.playground import PAGE, conversation_of, export, job_of, reply_of
from support.tiny_vision import IMAGE_TOKENS, build_tiny_vision_pair, mtmd_available, png_data_url

pytestmark = pytest.mark.skipif(not mtmd_available(), reason="llama-cpp-python without mtmd")


def png(color: tuple[int, int, int], size: tuple[int, int] = (20, 20)) -> bytes:
    return base64.b64decode(png_data_url(color, size).split(",", 1)[1])


RED, GREEN = png((200, 0, 0)), png((10, 200, 30))
SETTINGS = {"max_tokens": "6", "temperature": "0", "seed": "7"}


@pytest.fixture(scope="module")
def vision_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return build_tiny_vision_pair(tmp_path_factory.mktemp("vision"))


@pytest.fixture(scope="module")
def vision_app(apps, vision_pair) -> Iterator[InProcessApp]:
    """`eyes` reads images; `blind` is the same GGUF without its projector; `tight` reads
    one small image a request at most."""
    model, mmproj = vision_pair
    common = {"n_ctx": 1024, "threads": 1}
    config = (
        '[server]\nstore_path = "store.db"\n\n'
        + model_toml("eyes", "llama-cpp", str(model), mmproj=str(mmproj), **common)
        + model_toml("blind", "llama-cpp", str(model), **common)
        + model_toml(
            "tight",
            "llama-cpp",
            str(model),
            mmproj=str(mmproj),
            max_images=1,
            max_image_pixels=30 * 30,
            max_image_bytes=4000,
            **common,
        )
    )
    with apps.shared(config) as running:
        yield running


@pytest.fixture
def http(vision_app: InProcessApp) -> Iterator[httpx.Client]:
    with vision_app.client() as client:
        yield client


def post(
    http: httpx.Client,
    message: str,
    images: list[tuple[str, bytes]],
    model: str = "eyes",
    **form: str,
) -> httpx.Response:
    """POST the Send form as the page does, multipart, with `images` as (name, bytes)."""
    files = [("images", (name, data, "image/png")) for name, data in images]
    data = {"model": model, "message": message, **SETTINGS, **form}
    return http.post("/ui/chat", data=data, files=files or None, headers=PAGE)


def send(http: httpx.Client, message: str, *images: bytes, **form: str) -> tuple[str, str]:
    """Send a message with images and wait for the reply; (conversation id, page HTML)."""
    answer = post(http, message, [(f"image{i}.png", data) for i, data in enumerate(images)], **form)
    assert answer.status_code == 200, answer.text
    return conversation_of(http, job_of(answer.text)), answer.text


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def v1_reply(http: httpx.Client, message: str, *images: bytes) -> dict:
    """The same chat through /v1: image_url parts, then the text."""
    parts = [
        {
            "type": "image_url",
            "image_url": {"url": "data:image/png;base64," + base64.b64encode(i).decode()},
        }
        for i in images
    ]
    body = {
        "model": "eyes",
        "messages": [{"role": "user", "content": [*parts, {"type": "text", "text": message}]}],
        "max_tokens": 6,
        "temperature": 0,
        "seed": 7,
    }
    answer = http.post("/v1/chat/completions", json=body)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_an_attached_image_reaches_the_model_as_v1_sends_it_and_shows_in_the_turn(http) -> None:
    cid, page = send(http, "What is this?", RED)
    assert f'src="/ui/chat/images/{sha(RED)}"' in page
    user, reply = export(http, cid)["messages"]
    assert user["images"] == [sha(RED)]
    same = v1_reply(http, "What is this?", RED)
    assert reply["meta"]["prompt_tokens"] == same["usage"]["prompt_tokens"]
    assert reply["content"] == same["choices"][0]["message"]["content"]
    without = v1_reply(http, "What is this?")
    assert reply["meta"]["prompt_tokens"] == without["usage"]["prompt_tokens"] + IMAGE_TOKENS
    shown = http.get(f"/ui/chat/images/{sha(RED)}")
    assert shown.status_code == 200 and shown.content == RED
    assert shown.headers["content-type"] == "image/png"


def test_an_image_alone_is_a_message(http) -> None:
    cid, _ = send(http, "", GREEN)
    user, reply = export(http, cid)["messages"]
    assert (user["content"], user["images"]) == ("", [sha(GREEN)])
    assert reply["meta"]["prompt_tokens"] == v1_reply(http, "", GREEN)["usage"]["prompt_tokens"]


def test_regenerate_and_edit_keep_the_image_and_it_is_stored_once(http) -> None:
    cid, _ = send(http, "Describe it.", RED)
    first = reply_of(http, cid)
    user = export(http, cid)["messages"][0]
    again = http.post(
        f"/ui/chat/{cid}/regenerate/{first['id']}", data=SETTINGS | {"model": "eyes"}, headers=PAGE
    )
    assert again.status_code == 200, again.text
    conversation_of(http, job_of(again.text))
    second = reply_of(http, cid)
    assert second["id"] != first["id"]
    assert second["meta"]["prompt_tokens"] == first["meta"]["prompt_tokens"]  # the image too
    assert second["content"] == first["content"]  # same seed, same image
    edited = http.post(
        f"/ui/chat/{cid}/edit/{user['id']}",
        data=SETTINGS | {"model": "eyes", "edited": "What colour is it?"},
        headers=PAGE,
    )
    assert edited.status_code == 200, edited.text
    conversation_of(http, job_of(edited.text))
    file = export(http, cid)
    users = [m for m in file["messages"] if m["role"] == "user"]
    assert [m["images"] for m in users] == [[sha(RED)], [sha(RED)]]
    assert [i["sha256"] for i in file["images"]] == [sha(RED)]  # one image, kept once


def test_an_image_goes_with_the_last_conversation_that_carries_it(http) -> None:
    blue = png((0, 0, 250))
    one, _ = send(http, "One", blue)
    two, _ = send(http, "Two", blue)
    url = f"/ui/chat/images/{sha(blue)}"
    assert http.post(f"/ui/conversations/{one}/delete", headers=PAGE).status_code == 200
    assert http.get(url).status_code == 200  # the other conversation still carries it
    assert http.post(f"/ui/conversations/{two}/delete", headers=PAGE).status_code == 200
    assert http.get(url).status_code == 404


@pytest.mark.parametrize(
    ("model", "images", "words"),
    [
        ("blind", [("red.png", RED)], "“blind” reads no images: it has no image projector"),
        ("eyes", [("notes.png", b"just some text")], "“notes.png”: not an image that can be read"),
        ("eyes", [("cut.png", RED[:40])], "“cut.png”: not an image that can be read"),
        ("tight", [("big.png", png((1, 2, 3), (40, 40)))], "“big.png”: the image is 40x40 pixels"),
        (
            "tight",
            [("a.png", RED), ("b.png", GREEN)],
            "“b.png”: 2 images; this model takes at most 1",
        ),
        ("tight", [("noise.png", bytes(range(256)) * 20)], "“noise.png”: the image is 5120 bytes"),
    ],
)
def test_images_a_model_cannot_take_are_refused_in_words_and_nothing_is_kept(
    http, model: str, images: list[tuple[str, bytes]], words: str
) -> None:
    before = http.get("/ui/conversations").text
    answer = post(http, "Look", images, model=model)
    assert answer.status_code == 400
    assert words in answer.text.replace("&#34;", '"')
    assert 'class="error-msg"' in answer.text
    assert http.get("/ui/conversations").text == before  # no conversation was started
    assert http.get("/v1/models").status_code == 200  # and the server still serves


def test_the_json_export_holds_the_image_and_imports_back_with_it(http) -> None:
    cid, _ = send(http, "Keep this.", GREEN)
    file = export(http, cid)
    (image,) = file["images"]
    assert base64.b64decode(image["data"]) == GREEN
    assert image["media_type"] == "image/png" and image["sha256"] == sha(GREEN)
    answer = http.post(
        "/ui/conversations/import",
        data={"data": json.dumps(file), "filename": "chat.json"},
        headers=PAGE,
    )
    assert answer.status_code == 200, answer.text
    copy = re.search(r"c=([^\"&]+)", answer.headers["hx-redirect"])[1]
    assert export(http, copy)["messages"][0]["images"] == [sha(GREEN)]


def test_an_import_whose_image_is_not_its_hash_is_refused(http) -> None:
    cid, _ = send(http, "Keep this.", RED)
    file = export(http, cid)
    file["images"][0]["data"] = base64.b64encode(GREEN).decode()
    answer = http.post(
        "/ui/conversations/import",
        data={"data": json.dumps(file), "filename": "chat.json"},
        headers=PAGE,
    )
    assert answer.status_code == 400
    assert "Images[0]: its data does not have its sha256" in answer.text


def test_the_markdown_export_embeds_the_image_and_reads_back_with_it(http) -> None:
    cid, _ = send(http, "Picture this.", RED)
    text = http.get(f"/ui/conversations/{cid}/export.md").text
    url = "data:image/png;base64," + base64.b64encode(RED).decode()
    assert f"## User\n\n![image 1]({url})\n\nPicture this.\n" in text
    answer = http.post(
        "/ui/conversations/import", data={"data": text, "filename": "chat.md"}, headers=PAGE
    )
    assert answer.status_code == 200, answer.text
    copy = re.search(r"c=([^\"&]+)", answer.headers["hx-redirect"])[1]
    user = export(http, copy)["messages"][0]
    assert (user["content"], user["images"]) == ("Picture this.", [sha(RED)])


def test_the_run_card_lists_the_image_and_runs_it_again_identically(http) -> None:
    cid, _ = send(http, "Once more.", GREEN)
    reply = reply_of(http, cid)
    card = http.get(f"/ui/runs/{reply['id']}")
    assert card.status_code == 200
    assert f"image/png, {len(GREEN)} bytes, SHA-256 {sha(GREEN)}" in card.text
    assert f'src="/ui/chat/images/{sha(GREEN)}"' in card.text
    verdict = http.post(f"/ui/runs/{reply['id']}/rerun", headers=PAGE)
    assert verdict.status_code == 200
    assert "identical" in verdict.text.lower()


def test_the_inspector_shows_the_image_as_a_v1_part_and_says_oip_cannot_carry_it(http) -> None:
    cid, _ = send(http, "Inspect me.", RED)
    page = http.get(f"/ui/replies/{reply_of(http, cid)['id']}/inspect", headers=PAGE).text
    url = "data:image/png;base64," + base64.b64encode(RED).decode()
    assert url in page
    assert "the images (the chat tensors carry text only)" in page


def test_a_send_with_images_from_outside_the_page_is_refused_and_keeps_nothing(http) -> None:
    files = [("images", ("red.png", RED, "image/png"))]
    data = {"model": "eyes", "message": "Sneaky", **SETTINGS}
    before = http.get("/ui/conversations").text
    no_header = http.post("/ui/chat", data=data, files=files)
    assert no_header.status_code == 403  # a cross-site form cannot send HX-Request
    foreign = PAGE | {"Origin": "https://evil.example"}
    assert http.post("/ui/chat", data=data, files=files, headers=foreign).status_code == 403
    as_json = http.post("/ui/chat", json=data, headers=PAGE)
    assert as_json.status_code == 415
    assert http.get("/ui/conversations").text == before


def test_the_images_a_conversation_already_carries_count_towards_max_images(http) -> None:
    cid, _ = send(http, "First", RED, model="tight")
    before = export(http, cid)["messages"]
    answer = post(http, "Second", [("green.png", GREEN)], model="tight", conversation=cid)
    assert answer.status_code == 400
    assert "“green.png”: 2 images; this model takes at most 1 a request" in answer.text
    assert export(http, cid)["messages"] == before  # nothing was added
