"""The Arena tab, image Stop and kept images, and the embedding map, driven in Debian's
Chromium against the server with tiny models."""

from __future__ import annotations

import re
from typing import Any

from support.browser import close_page, needs_chromium, open_page, shoot, tab
from support.playground import SENTENCES
from support.servers import Server

# Each SSE event as it reaches an arena column: [column id, event name].
COLUMN_EVENTS = """
window.__columns = [];
document.addEventListener("htmx:sseBeforeMessage", (event) => {
  const column = event.target.closest(".arena-column");
  if (column) window.__columns.push([column.id, event.detail.type]);
});
"""


def run_arena(window: Any, models: list[tuple[str, str]], blind: bool = False) -> None:
    """Fill the text arena's form with these (model, temperature) columns, run it, and wait
    for the comparison, which loads once every column has ended."""
    arena = tab(window, "Arena").get_by_role("form", name="Text arena settings")
    arena.get_by_label("Prompt", exact=True).fill("Name three colours.")
    for letter, (model, temperature) in zip("ABCD", models, strict=False):
        arena.get_by_label(f"Model {letter}").select_option(model)
        arena.get_by_label(f"Temperature {letter}").fill(temperature)
    arena.get_by_label("Token limit per column").fill("40")
    if blind:
        arena.get_by_label("Blind: hide who is who until I vote").check()
    shown = window.locator("#arena-result .arena")  # the server's last arena, if any
    before = shown.get_attribute("data-arena") if shown.count() else None
    arena.get_by_role("button", name="Run arena").click()
    ran = window.locator(f"#arena-result .arena:not([data-arena='{before}'])")
    ran.locator(".word-diff").wait_for()  # not the word diff of the arena shown before


@needs_chromium
def test_two_models_stream_side_by_side_with_their_speeds_and_a_word_diff(
    browser: Any,
    server: Server,
) -> None:
    page = open_page(browser, server, script=COLUMN_EVENTS)
    try:
        run_arena(page, [("tiny-chat", "0.7"), ("slow-chat", "0.7")])
        columns = page.locator("#arena-result .arena-column")
        assert columns.count() == 2
        assert columns.nth(0).locator(".who").inner_text() == "tiny-chat · temperature 0.7"
        assert columns.nth(1).locator(".who").inner_text() == "slow-chat · temperature 0.7"
        for i in range(2):
            assert re.search(r"\d+\.\d tokens/s", columns.nth(i).locator(".turn-foot").inner_text())
        events = page.evaluate("window.__columns")
        for column in columns.evaluate_all("els => els.map(e => e.id)"):
            mine = [name for cid, name in events if cid == column]
            assert mine[-1] == "done" and "tail" in mine, mine  # it streamed, then ended
        assert "of the words in common" in page.locator(".compare-pick").inner_text()
        assert page.locator(".arena-vote button").count() == 3  # A, B and a tie
        shoot(page, "arena-light")
    finally:
        close_page(page)


@needs_chromium
def test_a_blind_vote_is_kept_and_shown_after_a_reload(page: Any) -> None:
    run_arena(page, [("tiny-chat", "0.2"), ("tiny-chat", "1.0")], blind=True)
    result = page.locator("#arena-result")
    assert result.locator(".arena-column .who").count() == 0  # who is who is hidden
    assert result.locator(".letter").all_inner_texts() == ["A", "B"]
    result.get_by_role("button", name="B", exact=True).click()
    page.locator(".vote-result").wait_for()
    assert "B — tiny-chat · temperature 1" in page.locator(".vote-result").inner_text()
    assert result.locator(".arena-column .who").count() == 2  # revealed
    page.reload()
    tab(page, "Arena")
    page.locator("#arena-result .vote-result").wait_for()
    assert "B — tiny-chat · temperature 1" in page.locator(".vote-result").inner_text()
    voted = page.locator("#arena-result .arena-column.voted")
    assert voted.locator(".letter").inner_text() == "B"
    assert "your vote" in voted.inner_text()


@needs_chromium
def test_an_image_grid_over_seeds_shows_one_picture_per_seed(page: Any) -> None:
    arena = tab(page, "Arena")
    grid = arena.get_by_role("form", name="Image grid settings")
    grid.get_by_label("Model").select_option("tiny-sd")
    grid.get_by_label("Prompt").fill("a tiny fox")
    grid.get_by_label("Vary").select_option("seed")
    grid.get_by_label("Values").fill("1, 2, 3")
    grid.get_by_role("button", name="Make grid").click()
    page.wait_for_function(
        "() => document.querySelectorAll('.arena-image-grid .picture img').length === 3"
    )
    cells = page.locator(".arena-image-grid .image-job")
    assert cells.locator(".job-prompt").all_inner_texts() == ["seed 1", "seed 2", "seed 3"]
    seeds = page.locator(".arena-image-grid .picture-facts b").all_inner_texts()
    assert seeds == ["1", "2", "3"]
    assert page.evaluate(
        "() => [...document.querySelectorAll('.arena-image-grid img')].every(i => i.naturalWidth)"
    )


def start_slow_image(window: Any) -> str:
    images = tab(window, "Images")
    images.get_by_label("Prompt", exact=True).fill("a very slow fox")
    images.get_by_label("Steps").fill("500")
    images.get_by_label("Size").fill("128x128")
    images.get_by_role("button", name="Generate").click()
    job = window.locator('#image-results .image-job[aria-busy="true"]').first
    job.wait_for()
    return job.get_attribute("id")


@needs_chromium
def test_stop_in_a_second_tab_stops_an_image_job(browser: Any, server: Server) -> None:
    first = open_page(browser, server)
    second = None
    try:
        job = start_slow_image(first)
        second = open_page(browser, server)
        tab(second, "Images")
        running = second.locator(f"#{job}")
        running.locator(".progress-text:has-text('Step')").wait_for()  # it follows the job
        running.get_by_role("button", name="Stop these images").click()
        for each in (first, second):
            stopped = each.locator(f'#{job}[data-status="stopped"]')
            stopped.wait_for()
            assert re.search(r"Stopped by you at step \d+ of 500\.", stopped.inner_text())
    finally:
        close_page(first)
        if second is not None:
            close_page(second)


@needs_chromium
def test_an_image_is_still_there_after_a_reload(page: Any) -> None:
    images = tab(page, "Images")
    images.get_by_label("Prompt", exact=True).fill("a fox to keep")
    images.get_by_label("Steps").fill("2")
    images.get_by_role("button", name="Generate").click()
    # this job's card: earlier tests' results are listed too
    job = page.locator("#image-results .image-job", has_text="a fox to keep").first
    picture = job.locator(".picture img").first
    picture.wait_for()
    src = picture.get_attribute("src")
    page.reload()
    tab(page, "Images")
    kept = page.locator(f'#image-results img[src="{src}"]')
    kept.wait_for()
    assert kept.evaluate("img => img.complete && img.naturalWidth") == 64
    card = page.locator("#image-results .image-job", has=page.locator(f'img[src="{src}"]'))
    assert "a fox to keep" in card.inner_text()


@needs_chromium
def test_an_image_run_card_makes_the_pictures_again_and_says_they_are_identical(
    page: Any,
) -> None:
    images = tab(page, "Images")
    images.get_by_label("Prompt", exact=True).fill("a fox on a card")
    images.get_by_label("Seed").fill("77")
    images.get_by_role("button", name="Generate").click()
    job = page.locator("#image-results .image-job", has_text="a fox on a card").first
    link = job.get_by_role("link", name=re.compile("Run card"))
    link.wait_for()
    page.goto(link.get_attribute("href"))
    page.locator("[data-outcome]").wait_for()
    assert page.locator("[data-outcome]").get_attribute("data-outcome") == "identical"
    fields = page.locator(".run-fields").inner_text()
    for shown in ("tiny-sd", "sha256:", "77", "64x64 pixels", "a fox on a card"):
        assert shown in fields
    stored = page.locator(".run-pictures img").first
    assert stored.evaluate("img => img.complete && img.naturalWidth") == 64


@needs_chromium
def test_the_embedding_map_shows_the_text_and_a_click_lists_the_neighbours(
    page: Any,
) -> None:
    embeddings = tab(page, "Embeddings")
    embeddings.get_by_label("Model", exact=True).select_option("minilm")
    embeddings.get_by_label("Compare neighbours with").select_option("tiny-embed")
    sentences = SENTENCES
    embeddings.get_by_label("Sentences, one per line").fill("\n".join(sentences))
    embeddings.get_by_role("button", name="Compare").click()
    page.locator("svg.embedding-map").wait_for()
    points = page.locator("svg.embedding-map .map-point")
    assert points.count() == len(sentences)
    assert points.nth(0).locator("title").text_content() == "1. A cat sits on the mat."
    # Sentences that mean the same lie on top of each other: the list under the map picks them.
    page.get_by_role("button", name="1. A cat sits on the mat.", exact=True).last.click()
    shown = page.locator(".neighbour-list:visible")
    assert shown.count() == 1 and shown.get_attribute("data-for") == "0"
    assert shown.locator("li").count() == 3
    assert "A kitten is resting on a rug." in shown.locator("li").first.inner_text()
    assert "tiny-embed names" in shown.inner_text()
    assert page.locator(".map-point.near").count() == 3
    points.nth(2).focus()
    page.keyboard.press("Enter")
    assert page.locator(".neighbour-list:visible").get_attribute("data-for") == "2"
    assert "Shares dropped" in page.locator(".neighbour-list:visible li").first.inner_text()
    points.nth(6).click()  # drawn last, on top of any neighbour
    assert page.locator(".neighbour-list:visible").get_attribute("data-for") == "6"
    assert page.locator(".overlap-table tbody tr").count() == len(sentences)
    shoot(page, "embedding-map-light")
