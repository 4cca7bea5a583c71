"""The playground's page over HTTP, no browser needed: the page and its vendored scripts, the
htmx header its actions need, and errors as HTML for the panel's error area."""

from __future__ import annotations

import re

import httpx


def test_the_page_and_its_vendored_scripts_are_served(http: httpx.Client) -> None:
    page = http.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for script in re.findall(r'<script src="([^"?]+)', page.text):
        assert http.get(script).status_code == 200, script
    assert "htmx-2.0.11.min.js" in page.text and "htmx-ext-sse-2.2.4.min.js" in page.text
    assert "script-src 'self';" in page.headers["content-security-policy"]


def test_actions_need_the_page_s_htmx_header(http: httpx.Client) -> None:
    """A cross-site form cannot send HX-Request, so it cannot unload models or chat."""
    refused = http.post("/ui/models/tiny-embed/unload")
    assert refused.status_code == 403
    assert "own page" in refused.text and not refused.text.lstrip().startswith("{")


def test_ui_errors_are_html_sent_to_the_panel_s_error_area(http: httpx.Client) -> None:
    answer = http.post(
        "/ui/chat",
        data={"model": "missing", "message": "hi"},
        headers={"HX-Request": "true", "X-Playground-Errors": "#chat-error"},
    )
    assert answer.status_code == 503
    assert answer.headers["hx-retarget"] == "#chat-error"
    assert answer.text.startswith('<p class="error-msg" role="alert">')
    assert "“missing” is not available" in answer.text
