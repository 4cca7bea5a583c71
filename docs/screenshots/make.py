"""Screenshots of the playground serving the default models.toml, for the README.

Run from the repository: `.venv/bin/python docs/screenshots/make.py`. It needs
/usr/bin/chromium (`apt-get install chromium`) and writes docs/screenshots/*.png.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests"))

from conftest import start_server, stop_server  # noqa: E402
from test_playground import CHROMIUM, CHROMIUM_ARGS  # noqa: E402

QUESTION = "Write a Python function that reverses a string."
SENTENCES = (
    "A cat sits on the mat.",
    "A kitten is resting on a rug.",
    "The stock market fell sharply today.",
    "Shares dropped at the opening bell.",
    "I like my coffee black.",
)


def chat(page: Any) -> None:
    panel = page.get_by_role("tabpanel", name="Chat")
    panel.get_by_label("System prompt").fill("You are a concise assistant.")
    panel.get_by_label("Temperature").fill("0.2")
    panel.get_by_label("Max tokens").fill("160")
    panel.get_by_label("Seed").fill("7")
    panel.get_by_label("Message").fill(QUESTION)
    panel.get_by_role("button", name="Send").click()
    page.locator("#conversation .turn-foot").wait_for(timeout=300_000)


def images(page: Any) -> None:
    panel = page.get_by_role("tabpanel", name="Images")
    panel.get_by_label("Prompt", exact=True).fill("a watercolour fox in the snow")
    if "(" in panel.get_by_label("Model").inner_text():
        return  # sd-turbo is not here offline: show the form, not a failed run
    panel.get_by_role("button", name="Generate").click()
    page.locator(".picture img").first.wait_for(timeout=300_000)


def embeddings(page: Any) -> None:
    panel = page.get_by_role("tabpanel", name="Embeddings")
    panel.get_by_label("Sentences, one per line").fill("\n".join(SENTENCES))
    panel.get_by_role("button", name="Compare").click()
    page.locator("svg.heatmap").wait_for(timeout=300_000)


PHONE = {"width": 390, "height": 844}


def token_views(context: Any, suffix: str) -> None:
    """A reply's token probabilities with one token's alternatives, the inspector after a
    replay, and the reply's run card after it ran again: `<view>-<suffix>.png`."""
    page = context.new_page()
    page.goto("/")
    panel = page.get_by_role("tabpanel", name="Chat")
    panel.get_by_label("Temperature").fill("0.7")
    panel.get_by_label("Max tokens").fill("24")
    panel.get_by_label("Seed").fill("7")
    panel.get_by_label("Token probabilities").check()
    panel.get_by_label("Message").fill("Name three colours of the rainbow.")
    panel.get_by_role("button", name="Send").click()
    reply = page.locator("#conversation .turn.assistant").last
    reply.locator(".turn-foot").wait_for(timeout=300_000)
    reply.locator(".token-view summary").click()
    reply.locator("button.tok").nth(3).click()
    reply.locator(".alt-list").wait_for()
    reply.locator(".token-view").scroll_into_view_if_needed()
    page.screenshot(path=str(HERE / f"tokens-{suffix}.png"))
    reply.get_by_role("button", name="Inspect reply").click()
    dialog = page.locator("#code-dialog")
    dialog.get_by_role("button", name="Replay at /v1").click()
    page.wait_for_function(
        "() => document.querySelector('.replay')?.dataset.outcome", timeout=300_000
    )
    dialog.locator(".replay h3").scroll_into_view_if_needed()
    page.screenshot(path=str(HERE / f"inspector-{suffix}.png"))
    page.goto(reply.get_by_role("link", name="Run card").get_attribute("href"))
    page.locator("[data-outcome]").wait_for(timeout=300_000)
    page.screenshot(path=str(HERE / f"run-card-{suffix}.png"), full_page=True)
    page.close()


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        server = start_server(REPO / "models.toml", Path(folder) / "server.log")
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
                )
                for scheme in ("light", "dark"):
                    context = browser.new_context(
                        base_url=server.url,
                        viewport={"width": 1280, "height": 800},
                        color_scheme=scheme,
                    )
                    page = context.new_page()
                    page.goto("/")
                    for name, act in (
                        ("chat", chat),
                        ("images", images),
                        ("embeddings", embeddings),
                        ("models", None),
                    ):
                        page.get_by_role("tab", name=name.capitalize()).click()
                        if act is not None:
                            act(page)
                        page.screenshot(path=str(HERE / f"{name}-{scheme}.png"))
                    token_views(context, scheme)
                    context.close()
                    phone = browser.new_context(
                        base_url=server.url, viewport=PHONE, color_scheme=scheme, is_mobile=True
                    )
                    token_views(phone, f"phone-{scheme}")
                    phone.close()
                browser.close()
        finally:
            stop_server(server)


if __name__ == "__main__":
    main()
