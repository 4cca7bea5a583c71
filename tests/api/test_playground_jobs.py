"""The playground's server-owned jobs over HTTP: replies that run with no page watching, many
readers, resuming with Last-Event-ID, and Stop, against the server with tiny models."""

from __future__ import annotations

import re
import threading
import time

import httpx
from support.inprocess import InProcessApp
from support.playground import PAGE, frames, job_of, post_message, start_reply


def text_of(got: list[dict[str, str]]) -> str:
    """What the page shows of the streaming reply after these events: the finished blocks
    appended one after another, and the last open tail."""
    blocks, tail = "", ""
    for frame in got:
        if frame["event"] == "block":
            blocks += frame["data"]
        elif frame["event"] == "tail":
            tail = frame["data"]
    return blocks + tail


def test_a_reply_runs_with_no_page_watching_and_a_late_reader_catches_up(
    http: httpx.Client,
) -> None:
    html = post_message(http, max_tokens=30)
    job = job_of(html)
    cid = re.search(r'name="conversation" value="([^"]+)"', html)[1]
    while http.get(f"/ui/conversations/{cid}/export.json").json()["messages"][-1]["status"] != (
        "done"
    ):
        time.sleep(0.2)  # nobody reads the stream meanwhile
    got = list(frames(http, job))
    kinds = [f["event"] for f in got]
    assert kinds in (["tail", "done"], ["block", "tail", "done"]), "the text came in one go"
    assert "finish: length" in got[-1]["data"] and "30 tokens" in got[-1]["data"]
    ids = [int(f["id"]) for f in got]  # each event's index; the last of a run for many
    assert ids == sorted(ids) and ids[-1] == ids[-2] + 1


def test_two_readers_of_one_reply_get_the_same_text(http: httpx.Client) -> None:
    job = start_reply(http, max_tokens=80)
    results: list[list[dict[str, str]]] = [[], []]

    def read(into: list[dict[str, str]]) -> None:
        into.extend(frames(http, job))

    readers = [threading.Thread(target=read, args=(r,)) for r in results]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join(60)
    first, second = results
    assert text_of(first) == text_of(second) != ""
    assert first[-1]["event"] == second[-1]["event"] == "done"
    assert first[-1]["data"] == second[-1]["data"]


def test_a_reader_that_reconnects_with_last_event_id_gets_the_rest_exactly_once(
    http: httpx.Client,
) -> None:
    job = start_reply(http, max_tokens=120)
    before: list[dict[str, str]] = []
    for frame in frames(http, job):
        before.append(frame)
        if len(before) == 5:
            break  # the connection drops here
    after = list(frames(http, job, last_id=before[-1]["id"]))
    whole = list(frames(http, job))
    assert before[-1]["event"] in ("block", "tail") and after[-1]["event"] == "done"
    assert text_of(before + after) == text_of(whole) != ""
    assert int(after[0]["id"]) > int(before[-1]["id"])
    assert "120 tokens" in after[-1]["data"]


def shown_so_far(page: str, job: str) -> tuple[str, str, str]:
    """A page's streaming reply: the event its stream follows after, its blocks and tail."""
    after = re.search(rf'sse-connect="/ui/chat/{job}/stream\?after=(\d+)"', page)[1]
    blocks = re.search(r'class="reply-blocks"[^>]*>(.*?)</div><div class="reply-tail"', page, re.S)
    tail = re.search(r'class="reply-tail"[^>]*>(.*?)</div></div>', page, re.S)
    return after, blocks[1], tail[1]


def test_a_page_opened_mid_reply_comes_with_the_text_so_far_and_streams_on_after_it(
    http: httpx.Client,
) -> None:
    html = post_message(http, max_tokens=200)
    job, cid = job_of(html), re.search(r'name="conversation" value="([^"]+)"', html)[1]
    reader = frames(http, job)
    while next(reader)["event"] not in ("block", "tail"):
        pass
    after, blocks, tail = shown_so_far(http.get("/", params={"c": cid}).text, job)
    assert int(after) >= 0 and blocks + tail != ""
    rest = list(frames(http, job, after=after))
    assert int(rest[0]["id"]) > int(after) and rest[-1]["event"] == "done"
    shown = blocks + "".join(f["data"] for f in rest if f["event"] == "block")
    tails = [f["data"] for f in rest if f["event"] == "tail"]
    whole = list(frames(http, job))  # the same reply followed from the start
    assert shown + (tails[-1] if tails else tail) == text_of(whole)
    reader.close()


def test_a_reconnect_header_wins_over_the_pages_after(http: httpx.Client) -> None:
    job = start_reply(http, max_tokens=40)
    done = list(frames(http, job))
    last = done[-1]["id"]
    again = list(frames(http, job, last_id=last, after="0"))
    assert [f["event"] for f in again] == ["done"]  # nothing after the last: `done` again


def test_a_bad_after_is_a_clear_400(http: httpx.Client) -> None:
    job = start_reply(http, max_tokens=5, model="tiny-chat")
    answer = http.get(f"/ui/chat/{job}/stream", params={"after": "soon"})
    assert answer.status_code == 400
    assert "must be an event number, not" in answer.text and "soon" in answer.text


def test_stop_ends_the_job_for_every_reader(http: httpx.Client) -> None:
    job = start_reply(http, max_tokens=1900)
    reader = frames(http, job)
    assert next(reader)["event"] in ("block", "tail")
    stopped = http.post("/ui/chat/stop", data={"job": job}, headers=PAGE)
    assert stopped.status_code == 200 and "finish: stopped" in stopped.text
    rest = list(reader)
    assert rest[-1]["event"] == "done" and "finish: stopped" in rest[-1]["data"]
    assert [f["event"] for f in frames(http, job)][-1] == "done"


def test_a_bad_last_event_id_is_a_clear_400(http: httpx.Client) -> None:
    job = start_reply(http, max_tokens=5, model="tiny-chat")
    answer = http.get(f"/ui/chat/{job}/stream", headers={"Last-Event-ID": "soon"})
    assert answer.status_code == 400
    assert "must be an event number, not" in answer.text and "soon" in answer.text


def test_an_unknown_job_ends_at_once_saying_it_is_gone(http: httpx.Client) -> None:
    got = list(frames(http, "no-such-job"))
    assert [f["event"] for f in got] == ["done"]
    assert "no longer available" in got[0]["data"]


def test_an_image_job_runs_on_after_the_request_that_started_it_has_closed(
    http: httpx.Client, app: InProcessApp
) -> None:
    """The job belongs to the server: the POST's connection closing must not drop its work."""
    with app.client() as once:
        answer = once.post(
            "/ui/images", data={"model": "tiny-sd", "prompt": "a fox", "steps": "2"}, headers=PAGE
        )
    assert answer.status_code == 200, answer.text
    job = re.search(r'sse-connect="/ui/images/([^/"]+)/stream"', answer.text)[1]
    images = http.get(f"/ui/images/{job}/stream").text  # the stream ends with `done`
    assert "event: done" in images and '<img src="/ui/images/files/' in images, images
