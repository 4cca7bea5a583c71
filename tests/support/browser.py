"""The playground in Debian's Chromium: launching it, opening the page, and the moves tests make."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from support.paths import REPO
from support.servers import Server

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = REPO / "test-artifacts" / "playground"
TIMEOUT = 20_000  # ms, for anything a tiny model does

needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="browser tests need Debian's Chromium at /usr/bin/chromium (apt-get install chromium)",
)

# Records each SSE event as it reaches the page, with the length of the streaming reply so far,
# and anything the page's Content-Security-Policy blocked.
RECORDER = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__csp.push(event.violatedDirective + " " + event.blockedURI);
});
window.__sse = [];
document.addEventListener("htmx:sseBeforeMessage", (event) => {
  const reply = document.querySelector('#conversation [aria-busy="true"] .reply');
  window.__sse.push([event.detail.type, event.detail.data, reply ? reply.textContent.length : -1]);
});
"""


@contextmanager
def chromium() -> Iterator[Any]:
    """Debian's Chromium under Playwright; skips the test without either."""
    if not CHROMIUM.exists():
        pytest.skip("needs /usr/bin/chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def open_page(browser: Any, server: Server, scheme: str = "light", script: str = "") -> Any:
    """The playground of `server` in a new context (light or dark `scheme`), recording SSE
    events, policy violations and page errors, with `script` run first."""
    context = browser.new_context(
        base_url=server.url, viewport={"width": 1280, "height": 800}, color_scheme=scheme
    )
    context.set_default_timeout(TIMEOUT)
    context.add_init_script(RECORDER + script)
    page = context.new_page()
    page.page_errors = []
    page.on("pageerror", lambda error: page.page_errors.append(str(error)))
    page.goto("/")
    page.wait_for_function("() => window.htmx && htmx.version")
    return page


def close_page(page: Any) -> None:
    """Close the page, checking it threw no errors and its policy blocked nothing."""
    blocked = page.evaluate("window.__csp")
    errors = page.page_errors
    page.context.close()
    assert errors == [], "the page threw JavaScript errors"
    assert blocked == [], "the Content-Security-Policy blocked something the page uses"


def tab(page: Any, name: str) -> Any:
    """Open a tab; its panel, to find controls in."""
    page.get_by_role("tab", name=name).click()
    return page.get_by_role("tabpanel", name=name)


def send(page: Any, message: str, max_tokens: int, model: str = "tiny-chat") -> None:
    """Send a chat message from the Chat tab."""
    chat = page.get_by_role("tabpanel", name="Chat")
    chat.get_by_label("Model").select_option(model)
    chat.get_by_label("Max tokens").fill(str(max_tokens))
    chat.get_by_label("Message").fill(message)
    chat.get_by_role("button", name="Send").click()


def last_reply(page: Any) -> Any:
    """The last assistant turn of the conversation."""
    return page.locator("#conversation .turn.assistant").last


def wait_for_reply(page: Any, count: int = 1) -> Any:
    """Until `count` replies have finished; the last one."""
    page.wait_for_function(
        "n => document.querySelectorAll('#conversation .turn.assistant .turn-foot').length >= n",
        arg=count,
    )
    return last_reply(page)


def wait_for_partial_reply(page: Any) -> None:
    """Until some of a reply shows while it is still streaming."""
    page.wait_for_function(
        "() => document.querySelector('#conversation [aria-busy=\"true\"] .reply')"
        "?.textContent.length > 0"
    )


def shoot(page: Any, name: str) -> None:
    """A screenshot of the page in test-artifacts/playground/NAME.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
