"""The playground over HTTP as its page drives it: the htmx header, posting a chat message,
reading a job's server-sent events, and the conversations and image jobs tests build on."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator

import httpx

PAGE = {"HX-Request": "true"}


def post_message(http: httpx.Client, max_tokens: int, model: str = "slow-chat", **form: str) -> str:
    """POST a chat message the way the page does; the conversation's HTML."""
    answer = http.post(
        "/ui/chat",
        data={"model": model, "message": "Tell me a story.", "max_tokens": str(max_tokens), **form},
        headers=PAGE,
    )
    assert answer.status_code == 200, answer.text
    return answer.text


def job_of(html: str) -> str:
    """The id of the chat job a page of HTML connects to."""
    return re.search(r'sse-connect="/ui/chat/([^/"]+)/stream(?:\?after=\d+)?"', html)[1]


def start_reply(http: httpx.Client, max_tokens: int, model: str = "slow-chat", **form: str) -> str:
    """POST a chat message the way the page does; the id of the reply's job."""
    return job_of(post_message(http, max_tokens, model, **form))


def frames(
    http: httpx.Client,
    job: str,
    last_id: str | None = None,
    kind: str = "chat",
    after: str | None = None,
) -> Iterator[dict[str, str]]:
    """The job's SSE frames as dicts of their fields, as they arrive (`kind`: chat, images);
    after event `last_id` (the header a reconnect sends) or `after` (the page's query)."""
    headers = {} if last_id is None else {"Last-Event-ID": last_id}
    params = {} if after is None else {"after": after}
    url = f"/ui/{kind}/{job}/stream"
    with http.stream("GET", url, headers=headers, params=params) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        frame: dict[str, str] = {}
        for line in answer.iter_lines():
            if not line:
                if frame:
                    yield frame
                frame = {}
                continue
            key, _, value = line.partition(":")
            value = value.removeprefix(" ")
            frame[key] = frame[key] + "\n" + value if key in frame else value


def conversation_of(http: httpx.Client, job: str) -> str:
    """Wait for the reply to end; the id of its conversation."""
    done = list(frames(http, job))[-1]
    return re.search(r'/ui/chat/([^/"]+)/regenerate/', done["data"])[1]


def export(http: httpx.Client, cid: str) -> dict:
    """A conversation as its JSON export."""
    answer = http.get(f"/ui/conversations/{cid}/export.json")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-disposition"].startswith("attachment; filename=")
    return answer.json()


def chat(http: httpx.Client, message: str, max_tokens: int = 5, **form: str) -> str:
    """Send `message` to tiny-chat and wait for the reply; the conversation's id."""
    job = start_reply(http, max_tokens, "tiny-chat", message=message, **form)
    return conversation_of(http, job)


SENTENCES = [
    "A cat sits on the mat.",
    "A kitten is resting on a rug.",
    "The stock market fell sharply today.",
    "Shares dropped at the opening bell.",
    "I like my coffee black.",
    "Tea with milk, please.",
    "The train was late again.",
]


def slow_images(
    http: httpx.Client, prompt: str
) -> tuple[str, dict[str, str], Iterator[dict[str, str]]]:
    """Start a 500-step generation as the Images tab does: its id, the first event of its
    stream, and the rest of the stream to read on."""
    answer = http.post(
        "/ui/images",
        data={"model": "tiny-sd", "prompt": prompt, "steps": "500", "size": "128x128"},
        headers=PAGE,
    )
    assert answer.status_code == 200, answer.text
    job = re.search(r'id="image-job-([^"]+)"', answer.text)[1]
    reader = frames(http, job, kind="images")
    return job, next(reader), reader


# -- the inspector --------------------------------------------------------------------------------

SEEDED = {"temperature": "0.8", "seed": "1234"}
WITH_TOKENS = {**SEEDED, "logprobs": "on", "top_logprobs": "3"}


def reply_of(http: httpx.Client, cid: str, position: int = -1) -> dict:
    """An assistant message of a conversation, as its export has it (the last by default)."""
    return [m for m in export(http, cid)["messages"] if m["role"] == "assistant"][position]


def inspector(http: httpx.Client, mid: str) -> str:
    """The inspector's HTML for a reply."""
    answer = http.get(f"/ui/replies/{mid}/inspect", headers=PAGE)
    assert answer.status_code == 200, answer.text
    return answer.text


def wire(page: str, name: str) -> dict:
    """The JSON the inspector shows under data-wire=`name`."""
    found = re.search(rf'data-wire="{name}">(.*?)</code>', page, re.S)
    return json.loads(html.unescape(found[1]))


def snippet(page: str, title: str) -> str:
    """The code of the inspector's snippet titled `title`, as the page shows it."""
    found = re.search(
        rf'<span class="code-lang">{re.escape(title)}</span>.*?<code[^>]*>(.*?)</code>', page, re.S
    )
    return html.unescape(found[1])


def sse_text(output: str) -> str:
    """The reply text of an OpenAI chat stream, from its `data:` lines."""
    text = ""
    for line in output.splitlines():
        if line.startswith("data: ") and line != "data: [DONE]":
            chunk = json.loads(line[6:])
            if chunk["choices"]:
                text += chunk["choices"][0]["delta"].get("content") or ""
    return text
