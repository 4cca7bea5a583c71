"""The inspector, token probabilities with branch-here, and run cards, driven in Chromium
against the server with tiny models."""

from __future__ import annotations

import re
from typing import Any

from support.browser import needs_chromium, send, wait_for_reply


def send_seeded(page: Any, message: str, max_tokens: int, tokens: bool = False) -> Any:
    chat = page.get_by_role("tabpanel", name="Chat")
    chat.get_by_label("Seed").fill("99")
    chat.get_by_label("Token probabilities").set_checked(tokens)
    if tokens:
        chat.get_by_label("Alternatives").fill("4")
    send(page, message, max_tokens)
    return wait_for_reply(page)


@needs_chromium
def test_a_token_s_alternative_starts_a_sibling_reply_from_there(page: Any) -> None:
    reply = send_seeded(page, "Branch from a token", 10, tokens=True)
    view = reply.locator(".token-view")
    view.locator("summary").click()
    tokens = view.locator("button.tok")
    assert tokens.count() == 10
    assert all(
        re.fullmatch(r"tok p[0-4]", c) for c in tokens.evaluate_all("b => b.map(x => x.className)")
    )
    before = "".join(tokens.evaluate_all("b => b.slice(0, 4).map(x => x.textContent)"))
    tokens.nth(4).click()
    alternatives = view.locator(".alt-list li")
    alternatives.first.wait_for()
    assert alternatives.count() == 4
    chosen = alternatives.nth(1).locator("code").text_content()
    alternatives.nth(1).get_by_role("button", name=re.compile("Branch here")).click()
    page.wait_for_function(
        "() => document.querySelector('#conversation .turn.assistant .sib-count')?.textContent"
        " === '2/2' && !document.querySelector('#conversation [aria-busy=\"true\"]')"
    )
    branched = wait_for_reply(page)
    text = branched.locator("input.raw").input_value()
    assert text.startswith(before + chosen) and len(text) > len(before + chosen)
    assert branched.locator(".token-view button.tok").count() == 4 + 1 + 10
    # Its request continues the reply so far; replayed over /v1 it ends the same way.
    branched.get_by_role("button", name="Inspect reply").click()
    dialog = page.locator("#code-dialog")
    assert '"continue_final_message": true' in dialog.locator('[data-wire="openai"]').inner_text()
    dialog.get_by_role("button", name="Replay at /v1").click()
    page.wait_for_function("() => document.querySelector('.replay')?.dataset.outcome")
    assert dialog.locator(".replay").get_attribute("data-outcome") == "identical"


@needs_chromium
def test_the_inspector_replays_the_request_and_shows_its_frames(page: Any) -> None:
    reply = send_seeded(page, "Inspect me", 12)
    reply.get_by_role("button", name="Inspect reply").click()
    dialog = page.locator("#code-dialog")
    dialog.get_by_text("OIP tensors: POST /v2/models/tiny-chat/infer").wait_for()
    assert '"seed": 99' in dialog.locator('[data-wire="openai"]').text_content()
    for label in ("Replay at /v1", "Replay at Seldon-style URL"):
        dialog.get_by_role("button", name=label).click()
        page.wait_for_function("() => document.querySelector('.replay')?.dataset.outcome")
        replay = dialog.locator(".replay")
        summary = replay.locator(".replay-summary").text_content()
        assert replay.get_attribute("data-outcome") == "identical", summary
        assert "first token after" in summary and "12 tokens" in summary
        frames = replay.locator(".frames tbody tr")
        assert frames.count() >= 13  # a frame per token, the last with usage, then [DONE]
        assert frames.last.locator("code").text_content() == "data: [DONE]"
        assert replay.locator("svg.histogram rect").count() > 0
        page.evaluate("document.querySelector('.replay').removeAttribute('data-outcome')")
    curl = dialog.locator("section.code", has=page.get_by_text("curl at /v1", exact=True))
    assert curl.locator("pre").text_content().startswith("curl -N ")
    assert curl.get_by_role("button", name="Copy: curl at /v1").is_visible()


@needs_chromium
def test_a_run_card_runs_the_reply_again_and_says_it_is_identical(page: Any) -> None:
    reply = send_seeded(page, "Card", 8)
    link = reply.get_by_role("link", name=re.compile("Run card"))
    page.goto(link.get_attribute("href"))
    page.locator("[data-outcome]").wait_for()
    assert page.locator("[data-outcome]").get_attribute("data-outcome") == "identical"
    fields = page.locator(".run-fields").inner_text()
    for shown in ("tiny-chat", "sha256:", "99", "max_tokens"):
        assert shown in fields
