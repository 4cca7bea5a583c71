"""Images in the playground's chat, driven in Debian's Chromium against a real server with the
tiny vision pair: a PNG attached with the file button (or pasted, or dropped) shows as a
thumbnail, goes with the message, streams a reply, and is in the export and the run card; a
model without a projector refuses it in words."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
from support.browser import close_page, needs_chromium, open_page, shoot, tab, wait_for_reply
from support.configs import model_toml
from support.servers import Server, Servers
from support.tiny_vision import build_tiny_vision_pair, mtmd_available, png_data_url

pytestmark = [
    needs_chromium,
    pytest.mark.skipif(not mtmd_available(), reason="llama-cpp-python without mtmd"),
]

RED = base64.b64decode(png_data_url((200, 0, 0)).split(",", 1)[1])
GREEN = base64.b64decode(png_data_url((10, 200, 30)).split(",", 1)[1])


@pytest.fixture(scope="module")
def vision_server(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`eyes` reads images; `blind` is the same GGUF without its projector."""
    model, mmproj = build_tiny_vision_pair(tmp_path_factory.mktemp("vision"))
    common = {"n_ctx": 1024, "threads": 1}
    config = (
        '[server]\nstore_path = "store.db"\n\n'
        + model_toml("eyes", "llama-cpp", str(model), mmproj=str(mmproj), **common)
        + model_toml("blind", "llama-cpp", str(model), **common)
    )
    with servers.shared(config) as running:
        yield running


@pytest.fixture
def window(browser: Any, vision_server: Server) -> Iterator[Any]:
    opened = open_page(browser, vision_server)
    yield opened
    close_page(opened)


def chat_tab(window: Any, model: str) -> Any:
    chat = tab(window, "Chat")
    chat.get_by_label("Model").select_option(model)
    chat.get_by_label("Max tokens").fill("8")
    chat.get_by_label("Temperature").fill("0")
    return chat


def attach(chat: Any, name: str, data: bytes) -> None:
    chat.get_by_label("Attach image").set_input_files(
        [{"name": name, "mimeType": "image/png", "buffer": data}]
    )


# Puts a PNG (base64) on a synthetic paste into the message box, or a drop on the composer.
GIVE = """([how, name, b64]) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const transfer = new DataTransfer();
  transfer.items.add(new File([bytes], name, {type: "image/png"}));
  if (how === "paste") {
    const box = document.getElementById("chat-message");
    box.dispatchEvent(new ClipboardEvent("paste", {clipboardData: transfer, bubbles: true}));
  } else {
    const composer = document.querySelector(".composer");
    composer.dispatchEvent(new DragEvent("dragover", {dataTransfer: transfer, bubbles: true}));
    composer.dispatchEvent(new DragEvent("drop", {dataTransfer: transfer, bubbles: true}));
  }
}"""


def give(window: Any, how: str, name: str, data: bytes) -> None:
    window.evaluate(GIVE, [how, name, base64.b64encode(data).decode()])


def thumbnails(chat: Any) -> list[str]:
    """The names under the composer's thumbnails, once each has loaded its picture."""
    shown = chat.locator("#chat-attachments .attachment")
    chat.page.wait_for_function(
        "() => [...document.querySelectorAll('#chat-attachments img')].every(i => i.naturalWidth)"
    )
    return shown.locator("figcaption").all_inner_texts()


def test_an_attached_png_shows_goes_with_the_message_and_a_reply_streams(window: Any) -> None:
    chat = chat_tab(window, "eyes")
    attach(chat, "red.png", RED)
    assert thumbnails(chat) == ["red.png"]
    chat.get_by_label("Message").fill("What is this?")
    chat.get_by_role("button", name="Send").click()
    reply = wait_for_reply(window)
    events = [kind for kind, _, _ in window.evaluate("window.__sse")]
    assert "tail" in events and events[-1] == "done"  # the reply streamed, then ended
    sent = window.locator("#conversation .turn.user .turn-image")
    assert sent.count() == 1
    assert sent.evaluate("i => i.naturalWidth") == 20  # the stored PNG, served back
    assert hashlib.sha256(RED).hexdigest() in sent.get_attribute("src")
    assert chat.locator("#chat-attachments").is_hidden()  # the composer is empty again
    assert window.locator("#chat-images").evaluate("i => i.files.length") == 0
    shoot(window, "chat-image-sent")
    # The Markdown export embeds it; the run card lists it and shows it.
    cid = window.evaluate("new URLSearchParams(location.search).get('c')")
    exported = window.request.get(f"/ui/conversations/{cid}/export.md").text()
    assert "![image 1](data:image/png;base64," + base64.b64encode(RED).decode() + ")" in exported
    window.goto(reply.locator(".run-card-link").get_attribute("href"))
    fields = window.locator(".run-fields").inner_text()
    assert f"image/png, {len(RED)} bytes, SHA-256 {hashlib.sha256(RED).hexdigest()}" in fields
    assert window.locator(".run-messages .turn-image").evaluate("i => i.naturalWidth") == 20
    outcome = window.locator("#verdict .verdict-word")
    outcome.wait_for()
    assert outcome.get_attribute("data-outcome") == "identical"


def test_pasted_and_dropped_images_add_up_and_a_removed_one_is_not_sent(window: Any) -> None:
    chat = chat_tab(window, "eyes")
    give(window, "paste", "pasted.png", RED)
    give(window, "drop", "dropped.png", GREEN)
    attach(chat, "chosen.png", RED)
    assert thumbnails(chat) == ["pasted.png", "dropped.png", "chosen.png"]
    chat.get_by_role("button", name="Remove chosen.png").click()
    assert thumbnails(chat) == ["pasted.png", "dropped.png"]
    shoot(window, "chat-images-attached")
    chat.get_by_label("Message").fill("Compare them.")
    chat.get_by_role("button", name="Send").click()
    wait_for_reply(window)
    sources = window.locator("#conversation .turn.user .turn-image").evaluate_all(
        "images => images.map(i => i.getAttribute('src'))"
    )
    assert sources == [f"/ui/chat/images/{hashlib.sha256(d).hexdigest()}" for d in (RED, GREEN)]


def test_a_model_without_a_projector_refuses_the_image_in_words(window: Any) -> None:
    chat = chat_tab(window, "blind")
    attach(chat, "red.png", RED)
    chat.get_by_label("Message").fill("What is this?")
    chat.get_by_role("button", name="Send").click()
    error = window.locator("#chat-error .error-msg")
    error.wait_for()
    assert "“blind” reads no images: it has no image projector (mmproj)" in error.inner_text()
    assert thumbnails(chat) == ["red.png"]  # kept, to remove or to send to another model
    assert window.locator("#conversation .turn").count() == 0
    attach(chat, "notes.png", b"not a picture at all")
    chat.get_by_label("Model").select_option("eyes")
    chat.get_by_role("button", name="Send").click()
    window.wait_for_function(
        "() => document.querySelector('#chat-error .error-msg')?.textContent.includes('notes.png')"
    )
    assert "not an image that can be read" in error.inner_text()


def test_the_inspector_replays_an_image_reply_at_v1_identically(window: Any) -> None:
    chat = chat_tab(window, "eyes")
    chat.get_by_label("Seed").fill("5")
    attach(chat, "green.png", GREEN)
    chat.get_by_label("Message").fill("And this?")
    chat.get_by_role("button", name="Send").click()
    reply = wait_for_reply(window)
    reply.get_by_role("button", name="Inspect reply").click()
    dialog = window.locator("#code-dialog")
    sent = dialog.locator('[data-wire="openai"]').text_content()
    assert '"image_url"' in sent and base64.b64encode(GREEN).decode() in sent
    dialog.get_by_role("button", name="Replay at /v1").click()
    window.wait_for_function("() => document.querySelector('.replay')?.dataset.outcome")
    assert dialog.locator(".replay").get_attribute("data-outcome") == "identical"
