"""The playground's pure parts: safe reply formatting, the heatmap, code snippets, words."""

from __future__ import annotations

import asyncio
import json
import shlex
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from html import unescape
from html.parser import HTMLParser
from typing import Any

import numpy as np
import pytest
from localoip.app.core.errors import InvalidInput, TooManyJobs
from localoip.app.playground import snippets
from localoip.app.playground.chat_job import SHOW_EVERY, ChatJob, ReplyStats
from localoip.app.playground.chat_settings import ChatSettings
from localoip.app.playground.formatting import StreamingMarkdown, format_reply
from localoip.app.playground.heatmap import colour, cosine_matrix, extremes, heatmap_svg, shorten
from localoip.app.playground.jobs import (
    RUNNING_AT_MOST,
    Event,
    Job,
    Jobs,
    coalesced,
    last_event_id,
)
from localoip.app.playground.messages import explain, sentence
from localoip.app.playground.replies import ReplyView, figures
from localoip.app.playground.templates import template_config
from localoip.runtimes.capabilities import ChatMessage, ChatRequest, InputError, TextDelta

PROBES = (
    "<script>window.__xss=1</script>",
    "<img src=x onerror=window.__xss=1>",
    '"><svg onload=alert(1)>',
    "&lt;already escaped&gt;",
)


class Elements(HTMLParser):
    """Collects the start tags and the text of an HTML fragment."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attributes: list[str] = []
        self.values: list[tuple[str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes += [name for name, _ in attrs]
        self.values += attrs

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> Elements:
    parser = Elements()
    parser.feed(html)
    parser.close()
    return parser


# -- formatting ---------------------------------------------------------------------------


@pytest.mark.parametrize("probe", PROBES)
def test_html_in_a_reply_is_text_not_markup(probe: str) -> None:
    html = format_reply(f"before {probe} after")
    parsed = parse(html)
    assert parsed.tags == ["p"] and parsed.attributes == []
    assert "".join(parsed.text).strip() == unescape(f"before {probe} after")


@pytest.mark.parametrize("probe", PROBES)
def test_html_inside_code_blocks_and_inline_code_stays_text(probe: str) -> None:
    html = format_reply(f"see `{probe}`\n```html\n{probe}\n```\n")
    parsed = parse(html)
    assert set(parsed.tags) <= {"p", "code", "div", "span", "button", "pre"}
    assert "onerror" not in parsed.attributes and "onload" not in parsed.attributes
    assert "".join(parsed.text).count(probe) == 2


def test_a_fenced_block_becomes_a_coloured_code_block_with_its_language_and_a_copy_button():
    html = format_reply("Here:\n```python\nprint('hi')\n```\nDone.")
    assert '<span class="code-lang">python</span>' in html
    assert 'data-copy="code"' in html
    assert '<span class="nb">print</span>' in html, "Pygments coloured the call"
    assert "print('hi')" in "".join(parse(html).text)
    assert html.startswith("<p>Here:</p>") and html.strip().endswith("<p>Done.</p>")


def test_a_fence_language_that_is_not_a_word_is_dropped() -> None:
    html = format_reply('```"><script>alert(1)</script>\nx\n```')
    assert "<script" not in html
    assert '<span class="code-lang">code</span>' in html


def test_an_unclosed_fence_a_reply_cut_short_still_shows_its_code() -> None:
    html = format_reply("Try:\n```sh\nls -l")
    assert "ls -l" in "".join(parse(html).text) and "<pre><code>" in html


def test_markdown_tables_lists_emphasis_and_links_render() -> None:
    html = format_reply(
        "| a | b |\n|:--|--:|\n| 1 | 2 |\n\n- one\n- **two**\n\n1. first\n\n"
        "[docs](https://example.com/x) and ~~old~~"
    )
    parsed = parse(html)
    for tag in ("table", "th", "td", "ul", "ol", "li", "strong", "a", "s"):
        assert tag in parsed.tags, tag
    assert "<th>a</th>" in html, "no inline style, which the page's policy would block"
    assert '<a href="https://example.com/x" rel="noopener noreferrer nofollow">docs</a>' in html


XSS = (
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](&#106;avascript:alert(1))",
    "[click](vbscript:msgbox(1))",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "<javascript:alert(1)>",
    "![x](javascript:alert(1))",
    "![x](https://evil.example/track.png)",
    '<a href="javascript:alert(1)">raw</a>',
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '<div onclick="alert(1)">hi</div>',
    "[ref]\n\n[ref]: javascript:alert(1)",
    '[x](https://ok.example "title" onmouseover=alert(1))',
)


@pytest.mark.parametrize("probe", XSS)
def test_markdown_xss_probes_leave_no_script_handler_or_bad_link(probe: str) -> None:
    html = format_reply(probe)
    parsed = parse(html)
    assert not {"script", "img", "iframe", "object"} & set(parsed.tags)
    for name, value in parsed.values:
        assert not name.startswith("on"), name
        if name == "href":
            assert value.startswith(("https://", "http://", "mailto:")), value


def test_a_streamed_reply_sends_each_finished_block_once_and_adds_up_to_the_whole() -> None:
    text = "Intro **bold**.\n\n- a\n- b\n\n```py\nx = 1\n```\n\n| h |\n|---|\n| c |\n\nEnd."
    stream = StreamingMarkdown()
    blocks: list[str] = []
    for i in range(0, len(text), 3):
        finished, tail = stream.feed(text[i : i + 3])
        if finished:
            blocks.append(finished)
    assert "".join(blocks) + str(tail) == format_reply(text)
    assert len(blocks) >= 4, "the paragraph, list, code and table went out as they finished"
    assert "End." in tail and "End." not in "".join(blocks)


def test_an_open_code_block_streams_as_plain_text_and_is_coloured_once_it_is_finished() -> None:
    stream = StreamingMarkdown()
    said, tail = stream.feed("Here:\n\n```python\ndef f(x):\n    return x < 1\n")
    assert said == format_reply("Here:")
    assert "<span" not in tail.split("code-lang")[1]  # the label's span, then no colours
    assert "def f(x):\n    return x &lt; 1" in tail
    finished, tail = stream.feed("```\n\nDone.")
    assert '<span class="k">def</span>' in finished  # Pygments' class for a keyword
    assert finished == format_reply("```python\ndef f(x):\n    return x < 1\n```\n")
    assert tail == format_reply("Done.")


def test_a_stored_reply_with_html_renders_escaped_through_the_turn_template() -> None:
    engine = template_config().to_engine()
    reply = ReplyView(
        id="abc",
        model="m",
        text="".join(PROBES),
        finish_reason="stop",
        error=None,
        figures=["3 tokens"],
        settings=['system prompt “<b onmouseover="x">”'],
    )
    html = engine.get_template("playground/assistant_turn.html").render(reply=reply)
    parsed = parse(html)
    assert not {"script", "img", "svg", "b"} & set(parsed.tags)
    assert "onerror" not in parsed.attributes and "onmouseover" not in parsed.attributes
    assert unescape("".join(PROBES)) in "".join(parsed.text)


# -- heatmap -------------------------------------------------------------------------------


def test_cosine_matrix_of_known_vectors() -> None:
    matrix = cosine_matrix(np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 2.0], [-1.0, 0.0]]))
    assert matrix.shape == (4, 4)
    assert np.allclose(np.diag(matrix), 1.0)
    assert matrix[0, 1] == pytest.approx(2**-0.5)
    assert matrix[0, 2] == pytest.approx(0.0)
    assert matrix[0, 3] == pytest.approx(-1.0)
    assert np.allclose(matrix, matrix.T)


def test_a_zero_vector_is_similar_to_nothing() -> None:
    matrix = cosine_matrix(np.array([[0.0, 0.0], [1.0, 0.0]]))
    assert np.all(np.isfinite(matrix))
    assert matrix[0, 1] == 0.0


@pytest.mark.parametrize("n", [1, 2, 5, 12, 20])
def test_the_heatmap_has_n_squared_cells_and_is_well_formed_svg(n: int) -> None:
    vectors = np.random.default_rng(n).normal(size=(n, 8))
    svg = heatmap_svg([f"sentence {i}" for i in range(n)], cosine_matrix(vectors))
    root = ET.fromstring(svg)
    cells = [g for g in root.iter("{http://www.w3.org/2000/svg}g") if g.get("class") == "cell"]
    assert len(cells) == n * n
    assert {(int(g.get("data-row")), int(g.get("data-col"))) for g in cells} == {
        (i, j) for i in range(n) for j in range(n)
    }


def test_heatmap_labels_are_escaped_and_long_ones_shortened() -> None:
    long = "a very long sentence that goes on and on well past the label width"
    svg = heatmap_svg(["<b>bold</b>", long], cosine_matrix(np.eye(2)))
    assert "<b>" not in svg and "&lt;b&gt;bold&lt;/b&gt;" in svg
    assert shorten(long) in svg and len(shorten(long)) <= 30
    ET.fromstring(svg)


def test_colours_run_from_dark_for_unrelated_to_bright_for_the_same() -> None:
    assert colour(-0.5) == colour(0.0) == "#440154"
    assert colour(1.0) == "#fde725"
    assert colour(0.5) == "#21918c"


def test_extremes_name_the_most_and_least_similar_pairs() -> None:
    matrix = np.array([[1.0, 0.9, 0.1], [0.9, 1.0, 0.4], [0.1, 0.4, 1.0]])
    most, least = extremes(matrix)
    assert (most.first, most.second, most.similarity) == (0, 1, 0.9)
    assert (least.first, least.second, least.similarity) == (0, 2, 0.1)
    assert extremes(np.eye(1)) is None


# -- code snippets -------------------------------------------------------------------------


def curl_body(code: str) -> dict:
    return json.loads(shlex.split(code.replace("\\\n", " "))[-1])


def test_chat_snippets_cover_both_base_urls_and_carry_the_settings() -> None:
    messages = [
        {"role": "system", "content": 'Be "terse"'},
        {"role": "user", "content": "it's <b>\nhere"},
    ]
    found = snippets.chat(
        "http://h:9", "tiny", messages, {"temperature": 0.5, "max_tokens": 9, "seed": None}
    )
    python_v1, python_seldon, curl_v1, curl_seldon = found
    assert 'base_url="http://h:9/v1"' in python_v1.code
    assert 'base_url="http://h:9/v2/models/tiny/infer"' in python_seldon.code
    for snippet in (python_v1, python_seldon):
        compile(snippet.code, snippet.title, "exec")
        assert "temperature=0.5" in snippet.code and "seed" not in snippet.code
    assert curl_v1.code.startswith("curl -N http://h:9/v1/chat/completions")
    assert curl_seldon.code.startswith("curl -N http://h:9/v2/models/tiny/infer/chat/completions")
    assert curl_body(curl_v1.code) == {
        "model": "tiny",
        "messages": messages,
        "temperature": 0.5,
        "max_tokens": 9,
        "stream": True,
    }


def test_image_snippets_put_localoip_fields_in_extra_body() -> None:
    found = snippets.images(
        "http://h:9", "sd", "a fox", {"n": 2, "size": "64x64", "steps": 3, "seed": 7}
    )
    compile(found[0].code, "python", "exec")
    assert 'extra_body={"steps": 3, "seed": 7}' in found[0].code
    assert curl_body(found[2].code) == {
        "model": "sd",
        "prompt": "a fox",
        "n": 2,
        "size": "64x64",
        "steps": 3,
        "seed": 7,
    }


def test_embedding_and_model_snippets_are_valid_python() -> None:
    for snippet in [
        *snippets.embeddings("http://h:9", "minilm", ["a", "b"]),
        *snippets.models("http://h:9", "minilm"),
    ]:
        if snippet.language == "python":
            compile(snippet.code, snippet.title, "exec")
    assert "repository/models/minilm/unload" in snippets.models("http://h:9", "minilm")[2].code


# -- words -----------------------------------------------------------------------------------


def test_errors_read_as_sentences() -> None:
    assert sentence("width must be a multiple of 8") == "Width must be a multiple of 8."
    assert explain(InvalidInput("Type a message first.")) == "Type a message first."


def test_an_unexpected_error_is_explained_without_a_dump() -> None:
    words = explain(RuntimeError("boom"))
    assert words.startswith("Something went wrong on the server (RuntimeError: boom)")
    assert "{" not in words


def test_reply_figures_give_time_to_first_token_speed_and_count() -> None:
    settings = ChatSettings("m", "", None, None, None)
    stats = ReplyStats(started=10.0, first_token=10.25, ended=11.25, tokens=101)
    assert figures(stats.meta(settings)) == ["first token 250 ms", "100.0 tokens/s", "101 tokens"]
    assert figures(ReplyStats(started=1.0).meta(settings)) == ["0 tokens"]


# -- a chat job, on a stand-in model ---------------------------------------------------------


class StandInModel:
    """Streams the given deltas, then raises `error`, or waits forever if there is none.

    Like a ModelHandle, it is idle again once a stream it began has ended.
    """

    name = "stand-in"

    def __init__(self, deltas: list[str], error: Exception | None = None) -> None:
        self.deltas = deltas
        self.error = error
        self.free = asyncio.Event()
        self.started = False

    async def idle(self) -> None:
        if self.started:
            await self.free.wait()

    async def generate_stream(
        self, capability: object, request: object
    ) -> AsyncIterator[TextDelta]:
        self.started = True
        try:
            for text in self.deltas:
                yield TextDelta(text)
            if self.error is not None:
                raise self.error
            await asyncio.Event().wait()
        finally:
            self.free.set()


def chat_job(model: StandInModel) -> ChatJob:
    engine = template_config().to_engine()

    def render(name: str, **context: Any) -> str:
        return engine.get_template(name).render(**context)

    settings = ChatSettings("stand-in", "", 0.5, 64, 1)
    request = ChatRequest([ChatMessage("user", "hi")], settings.sampling())
    return ChatJob(render, model, settings, request)  # type: ignore[arg-type]


def events_of(job: ChatJob) -> list[tuple[str, str]]:
    return [(event.name, event.html) for event in job.log]


def test_an_error_mid_reply_keeps_the_partial_text_and_shows_the_error() -> None:
    async def scenario() -> list[tuple[str, str]]:
        job = chat_job(StandInModel(["partial ", "<text>"], InputError("context is full")))
        job.begin()
        await job.finished.wait()
        return events_of(job)

    events = asyncio.run(scenario())
    assert [kind for kind, _ in events] == ["tail", "tail", "done"]
    assert events[1][1] == "<p>partial &lt;text&gt;</p>\n", "the open block, as escaped text"
    final = parse(events[-1][1])
    words = " ".join("".join(final.text).split())
    assert "partial <text>" in words and "Context is full." in words
    assert "finish: error (failed)" in words


def test_stop_cancels_a_running_reply_and_returns_once_the_model_is_free() -> None:
    async def scenario() -> tuple[ChatJob, StandInModel]:
        model = StandInModel(["one ", "two"])
        job = chat_job(model)
        job.begin()
        while job.stats.tokens < 2:
            await asyncio.sleep(0)
        await asyncio.wait_for(job.stop("stopped"), timeout=5)
        assert model.free.is_set()
        return job, model

    job, _ = asyncio.run(scenario())
    view = job.view()
    assert (view.text, view.finish_reason, view.error) == ("one two", "stopped", None)
    assert "2 tokens" in view.figures


def test_stopping_a_reply_that_never_started_ends_it_at_once() -> None:
    async def scenario() -> list[tuple[str, str]]:
        job = chat_job(StandInModel(["never"]))
        await asyncio.wait_for(job.stop("stopped"), timeout=1)
        job.begin()  # a job that was stopped first never runs
        assert job.task is None
        return events_of(job)

    assert [kind for kind, _ in asyncio.run(scenario())] == ["done"]


# -- jobs: many readers, catching up, bounds -----------------------------------------------------


def test_waiting_events_arrive_merged_with_the_index_of_the_last_they_stand_for() -> None:
    log = [Event("tail", "t0", append=False), Event("block", "a"), Event("tail", "t1", False)]
    log += [Event("block", "b"), Event("tail", "t2", False), Event("done", "end", False)]
    assert list(coalesced(log, 10)) == [
        (13, Event("block", "ab")),
        (14, Event("tail", "t2", append=False)),
        (15, Event("done", "end", append=False)),
    ]


def test_what_a_job_shows_so_far_is_its_blocks_joined_and_its_last_tail() -> None:
    job = Job(lambda *_, **__: "")
    assert job.shown() == (-1, {})
    for name, html, append in (("tail", "t0", False), ("block", "a", True), ("tail", "t1", False)):
        job.emit(name, html, append)
    job.emit("block", "b")
    assert job.shown() == (3, {"block": "ab", "tail": "t1"})


async def read(job: ChatJob, after: int = -1, count: int | None = None) -> list[tuple[int, Event]]:
    got = []
    async for item in job.events(after):
        got.append(item)
        if len(got) == count:
            break
    return got


def test_readers_that_join_late_or_resume_get_every_token_once() -> None:
    async def scenario() -> tuple[list, list, list]:
        model = StandInModel(["one\n\n", "two\n\n", "three"], InputError("context is full"))
        job = Jobs().add(chat_job(model))
        first = await read(job, count=1)
        await job.finished.wait()
        resumed = await read(job, after=first[-1][0])
        return first, resumed, await read(job)

    def shown(items: list[tuple[int, Event]]) -> str:
        """The finished blocks appended, then the last open tail, as the page shows them."""
        blocks = "".join(e.html for _, e in items if e.name == "block")
        return blocks + [e.html for _, e in items if e.name == "tail"][-1]

    first, resumed, whole = asyncio.run(scenario())
    assert shown(first + resumed) == shown(whole) == "<p>one</p>\n<p>two</p>\n<p>three</p>\n"
    kinds = [e.name for _, e in whole]
    assert kinds == ["block", "tail", "done"], "a late reader catches up in one event of each"


def test_text_faster_than_the_screen_is_rendered_together_and_a_pause_sends_it() -> None:
    async def scenario() -> ChatJob:
        job = Jobs().add(chat_job(StandInModel(["word "] * 300)))  # all at once, then a pause
        await asyncio.sleep(SHOW_EVERY * 3)
        await job.stop("stopped")
        return job

    job = asyncio.run(scenario())
    tails = [html for name, html in events_of(job) if name == "tail"]
    assert len(tails) == 2  # the first word at once; the other 299 together, in the pause
    assert tails[-1] == "<p>" + "word " * 299 + "word</p>\n"
    assert events_of(job)[-1][0] == "done"


def test_the_final_render_is_made_off_the_event_loop_and_done_takes_it_from_the_cache() -> None:
    async def scenario() -> ChatJob:
        job = Jobs().add(chat_job(StandInModel(["one ", "block"], InputError("full"))))
        await job.finished.wait()
        return job

    format_reply.cache_clear()
    job = asyncio.run(scenario())
    assert format_reply.cache_info().misses == 1  # rendered once, on the worker thread
    assert format_reply.cache_info().hits >= 1  # and `done` found it there
    assert "<p>one block</p>" in events_of(job)[-1][1]


def test_a_reader_asking_after_the_end_gets_done_again() -> None:
    async def scenario() -> list[tuple[int, Event]]:
        job = Jobs().add(chat_job(StandInModel(["x"], InputError("full"))))
        await job.finished.wait()
        return await read(job, after=len(job.log) - 1)

    [(index, event)] = asyncio.run(scenario())
    assert event.name == "done" and index == 1


def test_jobs_refuse_more_than_their_running_limit_with_a_429() -> None:
    async def scenario() -> None:
        jobs = Jobs()
        running = [jobs.add(chat_job(StandInModel([]))) for _ in range(RUNNING_AT_MOST)]
        with pytest.raises(TooManyJobs, match="running already") as refused:
            jobs.add(chat_job(StandInModel([])))
        assert refused.value.status == 429
        await running[0].stop("stopped")
        jobs.add(chat_job(StandInModel([])))  # room again
        for job in running[1:]:
            job.cancel("stopped")

    asyncio.run(scenario())


def test_a_job_running_past_its_time_limit_is_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("localoip.app.playground.jobs.RUN_AT_MOST_SECONDS", 0.05)

    async def scenario() -> ChatJob:
        job = Jobs().add(chat_job(StandInModel(["slow"])))
        await asyncio.wait_for(job.finished.wait(), timeout=5)
        return job

    view = asyncio.run(scenario()).view()
    assert (view.text, view.finish_reason) == ("slow", "time limit")


@pytest.mark.parametrize("header", ["x", "-5", "1.5"])
def test_a_bad_last_event_id_is_refused_in_words(header: str) -> None:
    with pytest.raises(InvalidInput, match=r"Last-Event-ID \(or after\) must be an event number"):
        last_event_id(header)


def test_no_last_event_id_means_from_the_start() -> None:
    assert last_event_id(None) == last_event_id("") == -1
    assert last_event_id("41") == 41
