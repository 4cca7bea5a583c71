"""The playground rendering a long streamed reply: the browser's long tasks and key latency.

A tiny GGUF (about 2000 tokens/s) streams a 4,000-token reply into the Chat tab in Debian's
Chromium while a person types into the message box. The page's long tasks (over 50 ms, from
PerformanceObserver) and the key events' durations (Event Timing) are summed. The baseline,
in the same run, is the same page for the same length of time with nothing streaming: the
ratio says how much streaming adds. Run: `.venv/bin/python bench/playground_render.py`.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from common import localoip, model_toml
from support.tiny_models import build_tiny_gguf

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
TOKENS = 4000

OBSERVE = """
window.__long = [];
window.__keys = [];
window.__from = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    if (e.startTime >= window.__from) window.__long.push([e.startTime - window.__from, e.duration]);
  }
}).observe({ type: "longtask", buffered: true });
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    if (e.name.startsWith("key") && e.startTime >= window.__from) window.__keys.push(e.duration);
  }
}).observe({ type: "event", durationThreshold: 16, buffered: true });
"""
START = "() => { window.__from = performance.now(); }"
"""Counts from now on: what loading the page cost is not streaming's (nor typing's)."""


def typing_while(page: object, until: str) -> float:
    """Type into the message box until the page's `until` expression is true; seconds taken."""
    box = page.get_by_role("textbox", name="Message")
    started = time.perf_counter()
    while not page.evaluate(until):
        box.press_sequentially("typing while it streams ", delay=20)
        box.fill("")
    return time.perf_counter() - started


def figures(page: object) -> tuple[int, float, float, float, list[tuple[float, float]]]:
    """Long tasks since START: count, ms in all, the longest; the slowest key event; and
    each long task as (ms after START, ms long)."""
    long = page.evaluate("window.__long")
    keys = page.evaluate("window.__keys") or [0.0]
    durations = [d for _, d in long]
    return len(long), sum(durations), max(durations or [0.0]), max(keys), long


def main() -> None:
    from playwright.sync_api import sync_playwright

    folder = Path(tempfile.mkdtemp(prefix="bench-render-"))
    build_tiny_gguf(folder / "tiny.gguf")
    config = model_toml("tiny-long", "llama-cpp", f"{folder}/tiny.gguf", n_ctx=8192, threads=1)
    with localoip(config, "render") as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(base_url=server.url, viewport={"width": 1280, "height": 800})
        page.add_init_script(OBSERVE)
        page.set_default_timeout(300_000)
        page.goto("/")
        page.wait_for_function("() => window.htmx")
        page.get_by_label("Max tokens").fill(str(TOKENS))
        page.get_by_role("textbox", name="Message").fill("Write a long answer.")
        page.evaluate(START)
        started = time.perf_counter()
        page.get_by_role("button", name="Send").click()
        done = "() => document.querySelector('#conversation .turn-foot') !== null"
        typing_while(page, done)
        seconds = time.perf_counter() - started
        footer = page.locator("#conversation .turn-foot").inner_text()
        streaming = figures(page)

        page.goto("/")  # the baseline: the same page, nothing streaming, as long
        page.wait_for_function("() => window.htmx")
        page.evaluate(START)
        deadline = time.monotonic() + seconds
        box = page.get_by_role("textbox", name="Message")
        while time.monotonic() < deadline:
            box.press_sequentially("typing with nothing streaming ", delay=20)
            box.fill("")
        idle = figures(page)
        browser.close()

    print(f"reply: {' '.join(footer.split())}")
    print(f"send to final render: {seconds:.1f} s for {TOKENS} tokens")
    for label, (count, total, longest, key, each) in (("streaming", streaming), ("idle", idle)):
        print(
            f"{label:9}: {count} long tasks, {total:.0f} ms in all, longest {longest:.0f} ms; "
            f"slowest key event {key:.0f} ms"
        )
        if each:
            at = ", ".join(f"{d:.0f} ms at {t / 1000:.1f} s" for t, d in each)
            print(f"{'':11}long tasks: {at}")
    print(f"long-task ms added by streaming: {streaming[1] - idle[1]:.0f}")
    print(f"slowest key event, streaming / idle: {streaming[3] / idle[3]:.2f}x")


if __name__ == "__main__":
    main()
