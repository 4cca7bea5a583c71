"""The playground's re-attach delay: how long a reload takes to show a reply still streaming.

A random-weight GGUF that decodes about 50 tokens/s on one thread streams a long reply into
the Chat tab in Debian's Chromium. The page is reloaded again and again while it streams; each
time, the time from the start of the navigation to the first event of the job's stream (which
carries the text so far, `Last-Event-ID` aside: a new page asks from the start) is taken, and
to the moment the page shows at least as much text as before the reload. The baseline, in the
same run and between those reloads, so under the same load, is the page of a finished reply:
navigation start to the page's `load` event, when the stored reply is on the page.
Run: `.venv/bin/python bench/playground_reattach.py [--runs N]`. It is not in `bench/run`
(it needs Chromium).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from common import localoip, median, model_toml
from support.tiny_models import build_tiny_gguf

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
TOKENS = 1900  # 35 s or more at 50 tokens/s: every reload finds it streaming

STREAMING = "#conversation [aria-busy='true'] .reply"
# When the page shows as much of the reply as it did before the reload (sessionStorage
# `before`, in characters), when its stream's first event came and when it loaded, all in ms
# since the navigation began, by the page's own clock.
WATCH = f"""
window.__firstEventAt = null;
window.__loadedAt = null;
window.__shownAt = null;
const wanted = Number(sessionStorage.getItem("before") || "1");
const check = () => {{
  const reply = document.querySelector("{STREAMING}");
  if (window.__shownAt === null && reply && reply.textContent.length >= wanted) {{
    window.__shownAt = performance.now();
  }}
}};
new MutationObserver(check).observe(document, {{ subtree: true, childList: true }});
window.addEventListener("load", () => {{ window.__loadedAt = performance.now(); }});
document.addEventListener("htmx:sseBeforeMessage", () => {{
  window.__firstEventAt ??= performance.now();
  setTimeout(check);
}});
"""


def shown_text(page: object) -> int:
    return page.evaluate(f'() => document.querySelector("{STREAMING}")?.textContent.length ?? 0')


def send(page: object, message: str, tokens: int) -> str:
    """Send a message from a new chat; the conversation's URL once its reply streams."""
    page.goto("/")
    page.wait_for_function("() => window.htmx")
    page.get_by_label("Max tokens").fill(str(tokens))
    page.get_by_role("textbox", name="Message").fill(message)
    page.get_by_role("button", name="Send").click()
    page.wait_for_function(f'() => document.querySelector("{STREAMING}")?.textContent')
    page.wait_for_url("**/?c=*")
    return page.url


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    runs = parser.parse_args().runs
    folder = Path(tempfile.mkdtemp(prefix="bench-reattach-"))
    build_tiny_gguf(folder / "slow.gguf", name="slow", n_embd=384, n_ff=1024, n_layer=16)
    config = model_toml("slow-chat", "llama-cpp", f"{folder}/slow.gguf", n_ctx=2048, threads=1)
    with localoip(config, "reattach") as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(base_url=server.url, viewport={"width": 1280, "height": 800})
        page.add_init_script(WATCH)
        page.set_default_timeout(300_000)
        finished = send(page, "A short answer, please.", 8)
        page.wait_for_selector("#conversation .turn-foot")
        streaming = send(page, "Write a long answer.", TOKENS)
        first_event, caught_up, sizes, loaded, baseline = [], [], [], [], []
        for _ in range(runs):
            before = max(shown_text(page), 1)
            page.evaluate(f"sessionStorage.setItem('before', '{before}')")
            page.reload()
            page.wait_for_function("() => window.__shownAt !== null")
            caught_up.append(page.evaluate("window.__shownAt"))
            page.wait_for_function("() => window.__firstEventAt !== null")
            first_event.append(page.evaluate("window.__firstEventAt"))
            loaded.append(page.evaluate("window.__loadedAt"))
            sizes.append(before)
            page.evaluate("sessionStorage.removeItem('before')")
            page.goto(finished)  # the baseline, under the same load: a finished reply's page
            page.wait_for_function("() => window.__loadedAt !== null")
            baseline.append(page.evaluate("window.__loadedAt"))
            page.goto(streaming)
            page.wait_for_function(f'() => document.querySelector("{STREAMING}")')
        still = page.locator(STREAMING).count() == 1  # every reload found it streaming
        browser.close()

    shown, load = median(caught_up), median(baseline)
    print(f"reloads while streaming: {runs} (text so far {min(sizes)}-{max(sizes)} chars)")
    print(f"still streaming after the last reload: {still}")
    print(f"re-attach, navigation to the page's load event:    {median(loaded):.0f} ms (median)")
    print(f"re-attach, navigation to the stream's first event: {median(first_event):.0f} ms")
    print(f"re-attach, navigation to the text so far shown:    {shown:.0f} ms")
    print(f"baseline, a finished reply's page to its load:     {load:.0f} ms")
    print(f"re-attach / page load: {shown / load:.2f}x")


if __name__ == "__main__":
    main()
