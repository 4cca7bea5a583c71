"""The playground at /, driven in Debian's Chromium against the server with tiny models."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx
from support.browser import (
    close_page,
    last_reply,
    needs_chromium,
    open_page,
    send,
    shoot,
    tab,
    wait_for_partial_reply,
    wait_for_reply,
)
from support.servers import Server

NO_CLIPBOARD_API = """
Object.defineProperty(Navigator.prototype, "clipboard", { get: () => undefined });
window.__copied = [];
document.addEventListener("copy", () => {
  const box = document.activeElement;
  window.__copied.push(box.value.slice(box.selectionStart, box.selectionEnd));
});
"""

# -- in the browser ------------------------------------------------------------------------------


@needs_chromium
def test_chat_streams_text_incrementally(page: Any) -> None:
    send(page, "Tell me a long story.", max_tokens=400, model="slow-chat")
    wait_for_partial_reply(page)
    assert page.get_by_role("button", name="Stop").is_enabled()
    assert page.get_by_role("button", name="Send").is_disabled()
    reply = wait_for_reply(page)
    events = page.evaluate("window.__sse")
    lengths = [length for kind, _, length in events if kind in ("block", "tail")]
    # Pieces come as fast as a screen shows them (SHOW_EVERY), not all at the end: 400 tokens
    # at about 100 tokens/s take seconds, so dozens of pieces.
    assert len(lengths) > 20, "the reply came as a few big pieces, not as it was written"
    assert lengths[0] < lengths[-1]  # Markdown may shorten the text a little (`**b**` is b)
    assert [kind for kind, _, _ in events][-1] == "done"
    footer = reply.locator(".turn-foot").inner_text()
    for part in ("slow-chat", "first token", "tokens/s", "400 tokens", "finish: length"):
        assert part in footer
    assert "temperature 0.7" in footer and "max tokens 400" in footer
    assert page.get_by_role("button", name="Send").is_enabled()


@needs_chromium
def test_stop_ends_the_reply_and_the_next_message_works_at_once(page: Any) -> None:
    send(page, "Go on and on.", max_tokens=1900, model="slow-chat")
    wait_for_partial_reply(page)
    page.get_by_role("button", name="Stop").click()
    stopped = wait_for_reply(page)
    footer = stopped.locator(".turn-foot").inner_text()
    assert "finish: stopped" in footer
    count = int(re.search(r"(?<![\d.])(\d+) tokens?\b(?!/)", footer)[1])  # not "85.0 tokens/s"
    assert 0 < count < 1900
    assert stopped.locator(".reply").inner_text().strip(), "the partial reply was kept"

    send(page, "And now?", max_tokens=5)
    second = wait_for_reply(page, count=2)
    assert "finish: length" in second.locator(".turn-foot").inner_text()


@needs_chromium
def test_enter_sends_and_shift_enter_adds_a_line(page: Any) -> None:
    page.get_by_label("Max tokens").fill("3")
    box = page.get_by_label("Message")
    box.click()
    box.type("line one")
    box.press("Shift+Enter")
    box.type("line two")
    assert box.input_value() == "line one\nline two"
    assert page.locator("#conversation .turn").count() == 0
    box.press("Enter")
    wait_for_reply(page)
    assert page.locator("#conversation .turn.user .turn-body").inner_text() == "line one\nline two"
    assert box.input_value() == ""


@needs_chromium
def test_user_html_is_shown_as_text_and_never_runs(page: Any) -> None:
    probe = "<img src=x onerror=window.__xss=1> <script>window.__xss=1</script> <b>bold</b>"
    send(page, probe, max_tokens=5)
    wait_for_reply(page)
    echo = page.locator("#conversation .turn.user .turn-body")
    assert echo.inner_text() == probe
    assert page.locator("#conversation img, #conversation script, #conversation b").count() == 0
    page.get_by_role("button", name="Show code").first.click()
    page.wait_for_selector("#code-dialog[open]")
    assert probe.replace('"', '\\"') in page.locator("#code-body").inner_text()
    assert page.locator("#code-body img, #code-body script").count() == 0
    assert page.evaluate("window.__xss") is None


@needs_chromium
def test_copy_works_without_the_clipboard_api(browser: Any, server: Server) -> None:
    """Over plain HTTP on a LAN there is no Clipboard API; a hidden textarea copies instead."""
    page = open_page(browser, server, script=NO_CLIPBOARD_API)
    try:
        send(page, "Copy me", max_tokens=8)
        reply = wait_for_reply(page)
        reply.get_by_role("button", name="Copy reply").click()
        page.wait_for_function("() => window.__copied.length > 0")
        text = reply.locator("input.raw").input_value()
        assert page.evaluate("window.__copied") == [text]
        assert reply.get_by_role("button", name="Copy reply").inner_text() == "Copied"
    finally:
        close_page(page)


@needs_chromium
def test_an_unavailable_model_is_explained_inline(page: Any) -> None:
    send(page, "hello?", max_tokens=5, model="missing")
    error = page.locator("#chat-error .error-msg")
    error.wait_for()
    words = error.inner_text()
    assert "“missing” is not available" in words and "no such file" in words
    assert "{" not in words
    assert page.get_by_label("Message").input_value() == "hello?", "the message was kept"
    assert page.locator("#conversation .turn").count() == 0


@needs_chromium
def test_a_bad_image_size_is_explained_inline(page: Any) -> None:
    images = tab(page, "Images")
    images.get_by_label("Prompt", exact=True).fill("a fox")
    images.get_by_label("Size").fill("100x100")
    images.get_by_role("button", name="Generate").click()
    error = page.locator("#images-error .error-msg")
    error.wait_for()
    assert "multiple of 8" in error.inner_text()


@needs_chromium
def test_images_show_step_progress_then_previews_with_seed_and_download(
    page: Any, http: httpx.Client
) -> None:
    images = tab(page, "Images")
    images.get_by_label("Prompt", exact=True).fill("a tiny fox")
    images.get_by_label("Steps").fill("3")
    images.get_by_label("Seed").fill("42")
    images.get_by_label("Number of images").fill("2")
    images.get_by_role("button", name="Generate").click()
    # The newest result comes first; those made before it are kept and listed after it.
    page.wait_for_function(
        "() => [...document.querySelectorAll("
        "'#image-results > .image-job:first-child .picture img')]"
        ".filter(i => i.naturalWidth > 0).length === 2"
    )
    progress = [data for kind, data, _ in page.evaluate("window.__sse") if kind == "progress"]
    steps = [int(re.search(r"Step (\d) of 3", p)[1]) for p in progress]
    # The job runs from the POST on, so a page that connects late sees the latest step first.
    assert steps == sorted(set(steps)) and set(steps) <= {1, 2, 3}
    figures = page.locator("#image-results > .image-job").first.locator(".picture")
    assert " ".join(figures.nth(0).inner_text().split()).startswith("seed 42 64\u00d764")
    assert " ".join(figures.nth(1).inner_text().split()).startswith("seed 43 64\u00d764")
    download = figures.nth(0).get_by_role("link", name="Download")
    assert download.get_attribute("download") == "localoip-42.png"
    png = http.get(download.get_attribute("href"))
    assert png.headers["content-type"] == "image/png" and png.content.startswith(b"\x89PNG")


@needs_chromium
def test_the_heatmap_has_a_cell_per_pair_of_sentences(page: Any) -> None:
    embeddings = tab(page, "Embeddings")
    embeddings.get_by_label("Model").select_option("minilm")
    sentences = ["A cat sits on the mat.", "A kitten rests on a rug.", "Stocks fell today.", "Hi"]
    embeddings.get_by_label("Sentences, one per line").fill("\n".join(sentences))
    embeddings.get_by_role("button", name="Compare").click()
    page.locator("svg.heatmap").wait_for()
    assert page.locator("svg.heatmap g.cell").count() == len(sentences) ** 2
    assert "Most alike: 1 and 2" in page.locator(".extremes").inner_text()


@needs_chromium
def test_the_models_panel_unloads_and_reloads_a_model(page: Any) -> None:
    tab(page, "Models")
    row = page.locator('tr[data-model="tiny-embed"]')
    assert row.get_attribute("data-state") == "READY"
    page.get_by_role("button", name="Unload tiny-embed").click()
    page.wait_for_selector('tr[data-model="tiny-embed"][data-state="UNLOADED"]')
    page.wait_for_selector("#status .chip:has-text('tiny-embed'):has-text('unloaded')")
    page.wait_for_function(
        "label => document.querySelector('#embeddings-model option[value=\"tiny-embed\"]')"
        ".textContent === label",
        arg="tiny-embed (unloaded)",
    )
    assert page.get_by_role("button", name="Unload tiny-embed").is_disabled()
    page.get_by_role("button", name="Load tiny-embed", exact=True).click()
    page.wait_for_selector('tr[data-model="tiny-embed"][data-state="READY"]')
    assert "loaded in" in row.inner_text()
    page.wait_for_selector("#status .chip:has-text('tiny-embed'):has-text('ready')")
    page.wait_for_function(
        "label => document.querySelector('#embeddings-model option[value=\"tiny-embed\"]')"
        ".textContent === label",
        arg="tiny-embed",
    )


TABS = ("Chat", "Images", "Speech", "Arena", "Embeddings", "Models")  # in the tab bar's order


@needs_chromium
def test_tabs_are_accessible_and_every_tab_is_captured(browser: Any, server: Server) -> None:
    for scheme in ("light", "dark"):
        page = open_page(browser, server, scheme)
        try:
            tabs = page.get_by_role("tablist").get_by_role("tab")
            assert tabs.all_inner_texts() == list(TABS)
            for name in TABS:
                panel = tab(page, name)
                assert page.get_by_role("tab", name=name).get_attribute("aria-selected") == "true"
                assert panel.is_visible()
                assert page.get_by_role("tabpanel").count() == 1  # the others are hidden
                shoot(page, f"{name.lower()}-{scheme}")
            page.get_by_role("tab", name="Models").focus()
            page.keyboard.press("ArrowRight")
            assert page.get_by_role("tab", name="Chat").get_attribute("aria-selected") == "true"
            assert page.evaluate("document.activeElement.id") == "tab-chat"
        finally:
            close_page(page)


# -- conversations kept on the server ----------------------------------------------------------

# The streamed text of the reply just before its final `done` swap, and when the first event
# after a (re)load arrived, in ms since the page's navigation began.
STREAM_WATCH = """
window.__beforeDone = null;
window.__firstEventAt = null;
document.addEventListener("htmx:sseBeforeMessage", (event) => {
  window.__firstEventAt ??= performance.now();
  if (event.detail.type !== "done") return;
  const reply = document.querySelector('#conversation [aria-busy="true"] .reply');
  if (reply) window.__beforeDone = reply.textContent;
});
"""


def squeezed(text: str) -> str:
    """Text without its white space, which Markdown's blocks lay out differently."""
    return "".join(text.split())


def stored_messages(http: httpx.Client, page: Any) -> list[dict]:
    cid = re.search(r"[?&]c=([^&#]+)", page.url)[1]
    return http.get(f"/ui/conversations/{cid}/export.json").json()["messages"]


@needs_chromium
def test_a_reload_mid_stream_continues_the_reply_with_nothing_lost_or_duplicated(
    browser: Any, server: Server, http: httpx.Client
) -> None:
    page = open_page(browser, server, script=STREAM_WATCH)
    try:
        send(page, "Tell me a long story.", max_tokens=300, model="slow-chat")
        wait_for_partial_reply(page)
        page.reload()
        page.wait_for_function("() => window.htmx && htmx.version")
        reply = wait_for_reply(page)
        reattach_ms = page.evaluate("window.__firstEventAt")
        print(f"\nre-attach: first event {reattach_ms:.0f} ms after the reload began")
        stored = stored_messages(http, page)[-1]
        assert stored["meta"]["completion_tokens"] == 300
        assert reply.locator("input.raw").input_value() == stored["content"]
        streamed, final = page.evaluate("window.__beforeDone"), reply.locator(".reply").inner_text()
        assert squeezed(streamed) == squeezed(final), "text was lost or duplicated"
        assert "finish: length" in reply.locator(".turn-foot").inner_text()
        assert page.locator("#conversation .turn.user .turn-body").inner_text() == (
            "Tell me a long story."
        )
    finally:
        close_page(page)


@needs_chromium
def test_two_tabs_follow_one_reply_and_the_second_can_stop_it(
    browser: Any, server: Server, http: httpx.Client
) -> None:
    first = open_page(browser, server, script=STREAM_WATCH)
    second = None
    try:
        send(first, "Go on and on.", max_tokens=1900, model="slow-chat")
        wait_for_partial_reply(first)
        second = open_page(browser, server, script=STREAM_WATCH)
        second.goto(first.url)
        wait_for_partial_reply(second)
        second.get_by_role("button", name="Stop").click()
        for tab in (first, second):
            footer = wait_for_reply(tab).locator(".turn-foot").inner_text()
            assert "finish: stopped" in footer
        stored = stored_messages(http, first)[-1]
        assert stored["meta"]["finish_reason"] == "stopped"
        final = last_reply(first).locator(".reply").inner_text()
        assert squeezed(first.evaluate("window.__beforeDone")) == squeezed(final)
        assert last_reply(second).locator("input.raw").input_value() == stored["content"]
        assert first.get_by_role("button", name="Send").is_enabled()
    finally:
        close_page(first)
        if second is not None:
            close_page(second)


@needs_chromium
def test_an_edit_makes_a_sibling_branch_and_arrows_move_between_them(page: Any) -> None:
    send(page, "first question", max_tokens=5)
    wait_for_reply(page)
    user = page.locator("#conversation .turn.user")
    user.get_by_role("button", name="Edit").click()
    page.get_by_label("Edited text").fill("second question")
    page.get_by_role("button", name="Save and send").click()
    page.wait_for_function(
        "() => document.querySelector('#conversation .turn.user .turn-body')?.textContent"
        " === 'second question' && document.querySelector('#conversation .turn-foot')"
    )
    assert user.locator(".sib-count").inner_text() == "2/2"
    user.get_by_role("button", name="Previous version").click()
    page.wait_for_function(
        "() => document.querySelector('#conversation .turn.user .turn-body')?.textContent"
        " === 'first question'"
    )
    assert user.locator(".sib-count").inner_text() == "1/2"
    assert page.locator("#conversation .turn.assistant .turn-foot").count() == 1
    user.focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_function(
        "() => document.querySelector('#conversation .turn.user .sib-count')?.textContent === '2/2'"
    )
    shoot(page, "branches-light")


@needs_chromium
def test_the_sidebar_searches_renames_and_opens_conversations(page: Any) -> None:
    word = f"kiwi{time.time_ns()}"
    send(page, f"Hello\nmy fruit is {word}", max_tokens=5)
    wait_for_reply(page)
    page.wait_for_url(re.compile(r"\?c="))
    title = page.get_by_label("Title")
    title.fill(f"Fruit notes {word}")
    page.get_by_role("button", name="Rename").click()
    link = page.locator("#conversation-list a", has_text=f"Fruit notes {word}")
    link.wait_for()
    # the refreshed list marks the open conversation once htmx has settled it
    page.wait_for_function(
        "title => [...document.querySelectorAll('#conversation-list a')].some("
        "a => a.textContent === title && a.getAttribute('aria-current') === 'page')",
        arg=f"Fruit notes {word}",
    )
    page.get_by_role("link", name="New chat").click()
    page.wait_for_function("() => !location.search")
    search = page.get_by_label("Search conversations")
    search.fill(word)
    page.wait_for_function("() => document.querySelectorAll('#conversation-list a').length === 1")
    search.fill(f"FRUIT NOTES {word}")
    page.locator("#conversation-list a", has_text=word).click()
    page.wait_for_url(re.compile(r"\?c="))
    assert word in page.locator("#conversation .turn.user").inner_text()
    search.fill("no-such-thing-" + word)
    page.wait_for_selector("#conversation-list li.muted")
    assert "No conversation holds" in page.locator("#conversation-list").inner_text()


@needs_chromium
def test_an_exported_file_imports_as_a_new_conversation(
    page: Any, http: httpx.Client, tmp_path: Path
) -> None:
    send(page, "Export me", max_tokens=5)
    wait_for_reply(page)
    with page.expect_download() as download:
        page.get_by_role("link", name="Export JSON").click()
    file = tmp_path / "chat.json"
    download.value.save_as(file)
    before = page.url
    page.set_input_files("#import-file", str(file))
    page.wait_for_url(lambda url: "?c=" in url and url != before)
    assert page.get_by_label("Title").input_value() == "Export me"
    assert page.locator("#conversation .turn.user .turn-body").inner_text() == "Export me"
    page.set_input_files(
        "#import-file", files=[{"name": "bad.json", "mimeType": "application/json", "buffer": b"{"}]
    )
    error = page.locator("#sidebar-error .error-msg")
    error.wait_for()
    assert "not a localoip conversation file" in error.inner_text()


@needs_chromium
def test_on_a_phone_the_conversations_are_a_drawer(browser: Any, server: Server) -> None:
    for scheme in ("light", "dark"):
        page = open_page(browser, server, scheme)
        try:
            page.set_viewport_size({"width": 390, "height": 800})
            sidebar = page.get_by_role("navigation", name="Conversations")
            page.wait_for_function(  # it slides away once the page is narrow
                "() => getComputedStyle(document.getElementById('sidebar')).visibility === 'hidden'"
            )
            assert not sidebar.is_visible()
            toggle = page.get_by_role("button", name="Conversations")
            toggle.click()
            page.wait_for_function(
                "() => getComputedStyle(document.getElementById('sidebar')).transform === 'none'"
            )
            assert sidebar.is_visible() and toggle.get_attribute("aria-expanded") == "true"
            shoot(page, f"drawer-{scheme}")
            page.keyboard.press("Escape")
            page.wait_for_function(
                "() => getComputedStyle(document.getElementById('sidebar')).visibility === 'hidden'"
            )
        finally:
            close_page(page)


WIDER_THAN_THE_WINDOW = """() => [...document.querySelectorAll('[role=tabpanel]:not([hidden]) *')]
  .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1)
  .map((e) => e.tagName + "." + e.className)"""


@needs_chromium
def test_on_a_phone_no_tab_is_wider_than_the_screen(page: Any) -> None:
    page.set_viewport_size({"width": 390, "height": 800})
    for name in TABS:
        tab(page, name).wait_for()
        assert page.evaluate(WIDER_THAN_THE_WINDOW) == [], name
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 390, name
    page.goto("/#models")  # a link to the last tab: its tab is scrolled into sight
    page.reload()  # (going to a new #fragment alone loads nothing)
    page.wait_for_function("() => document.getElementById('panel-models').hidden === false")
    box = page.get_by_role("tab", name="Models").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390


MARKDOWN_REPLY = """Here is a table:

| name | size |
|:-----|-----:|
| a    | 1    |

- first
- **second**

```python
print("<b>hi</b>")
```

[safe](https://example.com) [bad](javascript:window.__xss=1) <img src=x onerror=window.__xss=1>
<script>window.__xss=1</script> [ref]

[ref]: javascript:window.__xss=1
"""


@needs_chromium
def test_a_markdown_reply_shows_a_table_a_list_and_code_and_no_probe_runs(
    page: Any, http: httpx.Client
) -> None:
    chat = f"# Markdown\n\n## User\n\nShow me\n\n## Assistant (tiny-chat)\n\n{MARKDOWN_REPLY}"
    page.set_input_files(
        "#import-file",
        files=[{"name": "md.md", "mimeType": "text/markdown", "buffer": chat.encode()}],
    )
    page.wait_for_url(re.compile(r"\?c="))
    reply = last_reply(page).locator(".reply")
    assert reply.locator("table th").all_inner_texts() == ["name", "size"]
    assert reply.locator("ul > li").all_inner_texts() == ["first", "second"]
    assert reply.locator("li strong").inner_text() == "second"
    assert reply.locator(".code .code-lang").inner_text() == "python"
    assert reply.locator(".code code").inner_text().strip() == 'print("<b>hi</b>")'
    assert reply.locator("a").evaluate_all("links => links.map(a => a.href)") == [
        "https://example.com/"
    ]
    assert page.locator("#conversation img, #conversation script").count() == 0
    assert "<script>window.__xss=1</script>" in reply.inner_text()
    assert page.evaluate("window.__xss") is None
    shoot(page, "markdown-light")
