"""The playground's conversations over HTTP: stored replies with their figures, branches,
search, export and import (atomic), and clear errors for bad ids and bad files."""

from __future__ import annotations

import html
import json
import re
import uuid

import httpx
import pytest
from support.playground import PAGE, chat, export, frames, job_of


def import_(http: httpx.Client, data: str, filename: str = "chat.json") -> httpx.Response:
    return http.post(
        "/ui/conversations/import", data={"data": data, "filename": filename}, headers=PAGE
    )


def greeting_file(title: str, meta: dict) -> dict:
    """An export file of one greeting and a reply "Hello!" carrying `meta`, titled `title`
    and a unique suffix."""
    return {
        "format": "localoip.conversation",
        "version": 1,
        "title": title + uuid.uuid4().hex,
        "created_at": 1.0,
        "current": "b",
        "messages": [
            {"id": "a", "parent": None, "role": "user", "content": "Hello", "created_at": 1.0},
            {
                "id": "b",
                "parent": "a",
                "role": "assistant",
                "content": "Hello!",
                "created_at": 2.0,
                "meta": meta,
            },
        ],
    }


def listed(http: httpx.Client, query: str) -> list[str]:
    answer = http.get("/ui/conversations", params={"q": query})
    assert answer.status_code == 200
    return re.findall(r'data-conversation="([^"]+)"', answer.text)


def test_a_reply_is_stored_with_its_model_parameters_tokens_timings_and_finish(
    http: httpx.Client,
) -> None:
    cid = chat(http, "Hello", max_tokens=7, temperature="0", seed="42", system="Be brief.")
    user, reply = export(http, cid)["messages"]
    assert (user["role"], user["content"], user["parent"]) == ("user", "Hello", None)
    assert reply["parent"] == user["id"] and reply["status"] == "done"
    meta = reply["meta"]
    assert meta["model"] == "tiny-chat" and meta["seed"] == 42
    assert meta["parameters"] == {
        "system": "Be brief.",
        "temperature": 0.0,
        "max_tokens": 7,
        "seed": 42,
    }
    assert meta["completion_tokens"] == 7 and meta["prompt_tokens"] > 0
    assert meta["finish_reason"] == "length"
    assert (
        meta["time_to_first_token_ms"] > 0 and meta["duration_ms"] >= meta["time_to_first_token_ms"]
    )


def test_a_second_message_continues_the_conversation_it_names(http: httpx.Client) -> None:
    cid = chat(http, "One")
    assert chat(http, "Two", conversation=cid) == cid
    messages = export(http, cid)["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    assert messages[2]["parent"] == messages[1]["id"]


def test_regenerate_and_edit_add_siblings_and_delete_nothing(http: httpx.Client) -> None:
    cid = chat(http, "Question")
    user, reply = export(http, cid)["messages"]
    form = {"model": "tiny-chat", "max_tokens": "5"}
    again = http.post(f"/ui/chat/{cid}/regenerate/{reply['id']}", data=form, headers=PAGE)
    assert again.status_code == 200 and "2/2" in again.text
    list(frames(http, job_of(again.text)))
    edited = http.post(
        f"/ui/chat/{cid}/edit/{user['id']}",
        data={**form, "edited": "Better question"},
        headers=PAGE,
    )
    assert edited.status_code == 200 and "Better question" in edited.text
    list(frames(http, job_of(edited.text)))
    messages = export(http, cid)["messages"]
    assert len(messages) == 5
    roots = [m for m in messages if m["parent"] is None]
    assert [m["content"] for m in roots] == ["Question", "Better question"]
    assert sum(m["parent"] == user["id"] for m in messages) == 2
    shown = http.post(f"/ui/conversations/{cid}/show/{user['id']}", headers=PAGE)
    assert "Question" in shown.text and "Better question" not in shown.text
    assert "1/2" in shown.text


def test_search_finds_conversations_by_title_and_by_text(http: httpx.Client) -> None:
    word = uuid.uuid4().hex
    by_text = chat(http, f"Hello\nthe password is {word}")
    by_title = chat(http, "Plans")
    renamed = http.post(
        f"/ui/conversations/{by_title}/rename", data={"title": f"Quarterly {word}"}, headers=PAGE
    )
    assert renamed.status_code == 200 and f"Quarterly {word}" in renamed.text
    assert set(listed(http, word)) == {by_text, by_title}
    assert listed(http, f"QUARTERLY {word}") == [by_title]
    assert listed(http, f"{word}%") == [] and listed(http, "no-such-" + word) == []


def test_json_export_and_import_round_trip_keeps_every_branch(http: httpx.Client) -> None:
    cid = chat(http, "Round trip")
    _, reply = export(http, cid)["messages"]
    again = http.post(
        f"/ui/chat/{cid}/regenerate/{reply['id']}",
        data={"model": "tiny-chat", "max_tokens": "3"},
        headers=PAGE,
    )
    list(frames(http, job_of(again.text)))  # until the new reply is stored
    original = export(http, cid)
    answer = import_(http, json.dumps(original))
    assert answer.status_code == 200
    new = re.fullmatch(r"/\?c=(.+)", answer.headers["hx-redirect"])[1]
    assert new != cid
    copy = export(http, new)

    def shape(file: dict) -> list[tuple]:
        index = {m["id"]: i for i, m in enumerate(file["messages"])}
        return [
            (index.get(m["parent"]), m["role"], m["content"], m["meta"], m["status"])
            for m in file["messages"]
        ] + [index[file["current"]], file["title"]]

    assert shape(copy) == shape(original)
    assert {m["id"] for m in copy["messages"]}.isdisjoint(m["id"] for m in original["messages"])


def test_markdown_export_reads_back_as_the_same_path(http: httpx.Client) -> None:
    cid = chat(http, "Markdown please")
    markdown = http.get(f"/ui/conversations/{cid}/export.md")
    assert markdown.headers["content-type"].startswith("text/markdown")
    assert markdown.text.startswith("# Markdown please\n\n## User\n\nMarkdown please\n")
    answer = import_(http, markdown.text, "chat.md")
    new = answer.headers["hx-redirect"].removeprefix("/?c=")
    before, after = export(http, cid)["messages"], export(http, new)["messages"]
    assert [(m["role"], m["content"].strip()) for m in after] == [
        (m["role"], m["content"].strip()) for m in before
    ]
    assert after[1]["meta"]["model"] == "tiny-chat"


def test_an_import_with_a_bad_message_stores_nothing(http: httpx.Client) -> None:
    word = uuid.uuid4().hex
    messages = [
        {"id": "a", "parent": None, "role": "user", "content": word, "created_at": 1.0},
        {"id": "b", "parent": "missing", "role": "assistant", "content": "x", "created_at": 2.0},
    ]
    file = {
        "format": "localoip.conversation",
        "version": 1,
        "title": word,
        "created_at": 1.0,
        "current": "b",
        "messages": messages,
    }
    answer = import_(http, json.dumps(file))
    assert answer.status_code == 400
    assert "its parent “missing” is not an earlier message" in answer.text
    assert listed(http, word) == []


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ("{not json", "This is not a localoip conversation file"),
        ('{"format": "localoip.conversation", "version": 2}', "Invalid enum value 2"),
        ("", "Choose a file to import first"),
        ("notes without speakers", "needs “## User” and “## Assistant” headings"),
    ],
)
def test_a_bad_import_is_a_clear_400(http: httpx.Client, data: str, words: str) -> None:
    answer = import_(http, data)
    assert answer.status_code == 400 and words in answer.text
    assert answer.text.startswith('<p class="error-msg" role="alert">')


def test_an_import_of_too_many_messages_is_refused(http: httpx.Client) -> None:
    messages = [
        {"id": str(i), "parent": None, "role": "user", "content": "", "created_at": 1.0}
        for i in range(5001)
    ]
    file = {
        "format": "localoip.conversation",
        "version": 1,
        "title": "big",
        "created_at": 1.0,
        "current": None,
        "messages": messages,
    }
    answer = import_(http, json.dumps(file, separators=(",", ":")))
    assert answer.status_code == 400 and "an import takes at most 5000" in answer.text


def test_an_import_over_the_server_s_body_limit_is_a_clear_413(http: httpx.Client) -> None:
    answer = import_(http, "x" * (1024 * 1024 + 1))
    assert answer.status_code == 413


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/ui/conversations/nope/export.json"),
        ("GET", "/ui/conversations/nope/export.md"),
        ("POST", "/ui/conversations/nope/rename"),
        ("POST", "/ui/conversations/nope/delete"),
        ("POST", "/ui/conversations/nope/show/x"),
        ("GET", "/ui/chat/nope/edit/x"),
        ("GET", "/?c=nope"),
    ],
)
def test_unknown_conversations_are_a_clear_404(http: httpx.Client, method: str, path: str) -> None:
    answer = http.request(
        method, path, data={"title": "t"} if method == "POST" else None, headers=PAGE
    )
    assert answer.status_code == 404
    assert "There is no conversation “nope”" in answer.text


def test_unknown_messages_are_a_clear_404(http: httpx.Client) -> None:
    cid = chat(http, "Hi")
    form = {"model": "tiny-chat", "edited": "x"}
    for path in (
        f"/ui/conversations/{cid}/show/nope",
        f"/ui/chat/{cid}/edit/nope",
        f"/ui/chat/{cid}/regenerate/nope",
    ):
        answer = http.post(path, data=form, headers=PAGE)
        assert answer.status_code == 404 and "There is no message “nope”" in answer.text, path


def test_a_blank_title_is_refused(http: httpx.Client) -> None:
    cid = chat(http, "Hi")
    answer = http.post(f"/ui/conversations/{cid}/rename", data={"title": "  "}, headers=PAGE)
    assert answer.status_code == 400 and "A title cannot be empty." in answer.text


def test_delete_removes_the_conversation_with_its_branches(http: httpx.Client) -> None:
    cid = chat(http, "Delete me")
    answer = http.post(f"/ui/conversations/{cid}/delete", headers=PAGE)
    assert answer.status_code == 200 and answer.headers["hx-redirect"] == "/"
    assert http.get(f"/ui/conversations/{cid}/export.json").status_code == 404


def test_a_replys_reasoning_is_folded_on_the_page_and_kept_by_export_import_and_inspector(
    http: httpx.Client,
) -> None:
    """A reply that reasoned shows its reasoning folded, with its tokens and time; the JSON
    export and an import keep it, and the inspector and the run card show it."""
    thought = "The user greets me <b>politely</b>.\nI should greet back."
    meta = {"model": "tiny-chat", "reasoning": thought, "reasoning_tokens": 14}
    file = greeting_file("Thinking ", {**meta, "reasoning_ms": 1250.0})
    answer = import_(http, json.dumps(file))
    cid = answer.headers["hx-redirect"].removeprefix("/?c=")
    page = http.get(f"/?c={cid}").text
    fold = re.search(
        r'<details class="reasoning">\s*<summary>(.*?)</summary>(.*?)</details>', page, re.S
    )
    assert fold[1] == "Reasoning · 14 tokens · 1.2 s"
    assert "The user greets me &lt;b&gt;politely&lt;/b&gt;.\nI should greet back." in fold[2]
    (reply,) = [m for m in export(http, cid)["messages"] if m["role"] == "assistant"]
    assert reply["meta"]["reasoning"] == thought and reply["meta"]["reasoning_ms"] == 1250.0
    inspected = http.get(f"/ui/replies/{reply['id']}/inspect", headers=PAGE).text
    assert "Reasoning · 14 tokens · 1.2 s" in inspected and "I should greet back." in inspected
    card = http.get(f"/ui/runs/{reply['id']}").text
    assert "Reasoning · 14 tokens · 1.2 s" in card


def test_a_replys_reasoning_goes_back_with_it_in_the_next_request(http: httpx.Client) -> None:
    """The next reply's request carries the earlier reply's reasoning as reasoning_content,
    as the inspector shows (and says the OIP form cannot carry it)."""
    meta = {"model": "tiny-chat", "reasoning": "A greeting.", "reasoning_tokens": 3}
    file = greeting_file("Thinking on ", meta)
    cid = import_(http, json.dumps(file)).headers["hx-redirect"].removeprefix("/?c=")
    answer = http.post(
        "/ui/chat",
        data={"model": "tiny-chat", "message": "Again", "max_tokens": "3", "conversation": cid},
        headers=PAGE,
    )
    assert answer.status_code == 200, answer.text
    list(frames(http, job_of(answer.text)))
    reply = [m for m in export(http, cid)["messages"] if m["role"] == "assistant"][-1]
    page = http.get(f"/ui/replies/{reply['id']}/inspect", headers=PAGE).text
    sent = json.loads(html.unescape(re.search(r'data-wire="openai">(.*?)</code>', page, re.S)[1]))
    assert [m.get("reasoning_content") for m in sent["messages"]] == [None, "A greeting.", None]
    assert "reasoning_content" in page and "earlier replies" in page


def test_the_reasoning_effort_chosen_goes_with_the_request_and_is_kept(http: httpx.Client) -> None:
    page = http.get("/").text
    assert re.findall(r'<option value="([a-z]*)"', page.split('name="reasoning_effort"')[1])[
        :6
    ] == ["", "none", "minimal", "low", "medium", "high"]
    cid = chat(http, "Think less", reasoning_effort="none")
    reply = [m for m in export(http, cid)["messages"] if m["role"] == "assistant"][-1]
    assert reply["meta"]["parameters"]["reasoning_effort"] == "none"
    shown = http.get(f"/?c={cid}").text
    assert "reasoning effort none" in shown
    inspected = http.get(f"/ui/replies/{reply['id']}/inspect", headers=PAGE).text
    sent = json.loads(
        html.unescape(re.search(r'data-wire="openai">(.*?)</code>', inspected, re.S)[1])
    )
    tensors = json.loads(
        html.unescape(re.search(r'data-wire="oip">(.*?)</code>', inspected, re.S)[1])
    )
    assert sent["reasoning_effort"] == tensors["parameters"]["reasoning_effort"] == "none"


def test_an_unknown_reasoning_effort_is_refused_in_words(http: httpx.Client) -> None:
    answer = http.post(
        "/ui/chat",
        data={"model": "tiny-chat", "message": "x", "reasoning_effort": "extreme"},
        headers=PAGE,
    )
    assert answer.status_code == 400 and "Reasoning effort must be one of" in answer.text
