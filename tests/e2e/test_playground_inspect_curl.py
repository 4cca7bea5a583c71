"""The inspector's curl commands, run by curl itself against the real server with tiny models:
they give the reply the playground stored."""

from __future__ import annotations

import json
import subprocess

from support.playground import (
    PAGE,
    SEEDED,
    WITH_TOKENS,
    chat,
    frames,
    inspector,
    job_of,
    reply_of,
    snippet,
    sse_text,
    wire,
)


def run_curl(command: str) -> str:
    done = subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, timeout=120, check=True
    )
    return done.stdout


def test_the_inspector_curl_commands_give_the_same_reply_when_run_by_curl(http):
    cid = chat(http, "Say something", max_tokens=12, **SEEDED)
    reply = reply_of(http, cid)
    page = inspector(http, reply["id"])
    for title in ("curl at /v1", "curl, Seldon-style URL"):
        command = snippet(page, title)
        assert command.startswith("curl -N ")
        assert sse_text(run_curl(command)) == reply["content"], title
    oip = json.loads(run_curl(snippet(page, "curl, OIP infer (tensors)")))
    assert next(o for o in oip["outputs"] if o["name"] == "content")["data"] == [reply["content"]]


def test_the_inspector_of_a_branch_sends_continue_final_message_and_curl_agrees(http):
    cid = chat(http, "Branch me", max_tokens=8, **WITH_TOKENS)
    old = reply_of(http, cid)
    branched = http.post(
        f"/ui/chat/{cid}/branch/{old['id']}",
        data={"index": "2", "alternative": "1"},
        headers=PAGE,
    )
    list(frames(http, job_of(branched.text)))
    new = reply_of(http, cid)
    page = inspector(http, new["id"])
    body = wire(page, "openai")
    assert body["continue_final_message"] is True
    assert body["messages"][-1] == {"role": "assistant", "content": new["meta"]["prefix"]}
    assert "continue_final_message" in page and "leaves out" in page  # OIP cannot carry it
    streamed = run_curl(snippet(page, "curl at /v1"))
    assert new["meta"]["prefix"] + sse_text(streamed) == new["content"]
    python = snippet(page, "Python, OpenAI SDK at /v1")
    assert 'extra_body={"continue_final_message": True}' in python
    compile(python, "snippet", "exec")
