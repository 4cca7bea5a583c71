"""The playground's inspector, token probabilities with branch-here, and run cards, over HTTP
in process with tiny models: the inspector's snippets and what they send (run by curl: in
e2e/test_playground_inspect_curl.py), branches that continue from a chosen token, run cards
that reproduce (or report a replaced model file), and clear 4xx answers to bad input."""

from __future__ import annotations

import html
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from localoip.app.playground.runcards import first_difference
from support.configs import API_KEY as KEY
from support.configs import model_toml
from support.inprocess import Apps, InProcessApp
from support.playground import (
    PAGE,
    SEEDED,
    WITH_TOKENS,
    chat,
    export,
    frames,
    inspector,
    job_of,
    reply_of,
    wire,
)
from support.tiny_models import build_tiny_gguf

# -- token probabilities and branch-here ------------------------------------------------------


def test_a_reply_with_token_probabilities_keeps_each_token_and_its_alternatives(http):
    cid = chat(http, "Count to three", max_tokens=8, **WITH_TOKENS)
    reply = reply_of(http, cid)
    meta = reply["meta"]
    assert meta["parameters"]["top_logprobs"] == 3
    tokens = meta["tokens"]
    assert len(tokens) == meta["completion_tokens"] == 8
    assert "".join(t[0] for t in tokens) == reply["content"]  # ASCII: no bytes kept apart
    assert all(t[3] is None and t[4] == [] for t in tokens)
    for _, logprob, top, *_ in tokens:
        assert logprob <= 0 and len(top) == 3
        assert [p for _, p in top] == sorted((p for _, p in top), reverse=True)
    assert meta["digest"].startswith("sha256:") and len(meta["digest"]) == 7 + 64
    assert re.fullmatch(r"\d+\.\d+.*", meta["server_version"])


def test_the_alternatives_of_a_token_offer_a_branch_from_each(http):
    cid = chat(http, "Hello", max_tokens=6, **WITH_TOKENS)
    reply = reply_of(http, cid)
    answer = http.get(f"/ui/replies/{reply['id']}/tokens/2", headers=PAGE)
    assert answer.status_code == 200
    assert answer.text.count(">Branch here</button>") == 3
    first = html.escape(reply["meta"]["tokens"][2][2][0][0], quote=False)
    assert f'<code class="tok-text">{first}</code>' in answer.text


def test_branch_here_continues_from_the_chosen_alternative_as_a_sibling(http):
    cid = chat(http, "Tell me something", max_tokens=10, **WITH_TOKENS)
    old = reply_of(http, cid)
    tokens = old["meta"]["tokens"]
    alternative = next(i for i, (t, _) in enumerate(tokens[3][2]) if t != tokens[3][0])
    chosen = tokens[3][2][alternative][0]
    branched = http.post(
        f"/ui/chat/{cid}/branch/{old['id']}",
        data={"index": "3", "alternative": str(alternative)},
        headers=PAGE,
    )
    assert branched.status_code == 200, branched.text
    assert "2/2" in branched.text
    list(frames(http, job_of(branched.text)))
    new = reply_of(http, cid)
    prefix = "".join(t[0] for t in tokens[:3]) + chosen
    assert new["parent"] == old["parent"] and new["id"] != old["id"]
    assert new["meta"]["prefix"] == prefix
    assert new["content"].startswith(prefix) and len(new["content"]) > len(prefix)
    assert new["meta"]["tokens"][3][0] == chosen
    assert "".join(t[0] for t in new["meta"]["tokens"]) == new["content"]
    assert new["meta"]["completion_tokens"] == 10  # the new tokens after the prefix


def test_continue_final_message_goes_on_from_inside_the_reply_over_v1(v1):
    """A greedy reply, cut after three tokens and continued, ends as the whole reply did."""
    client = v1
    asked = [{"role": "user", "content": "Go on"}]
    whole = client.chat.completions.create(
        model="tiny-chat", messages=asked, max_tokens=9, temperature=0, logprobs=True
    )
    tokens = [t.token for t in whole.choices[0].logprobs.content]
    prefix = "".join(tokens[:3])
    rest = client.chat.completions.create(
        model="tiny-chat",
        messages=[*asked, {"role": "assistant", "content": prefix}],
        max_tokens=6,
        temperature=0,
        extra_body={"continue_final_message": True},
    )
    assert prefix + rest.choices[0].message.content == whole.choices[0].message.content


def test_continue_final_message_needs_an_assistant_message_last(http):
    for messages in ([{"role": "user", "content": "hi"}], [{"role": "assistant", "content": "a"}]):
        answer = http.post(
            "/v1/chat/completions",
            json={"model": "tiny-chat", "messages": messages, "continue_final_message": True},
        )
        assert answer.status_code == 400
        assert answer.json()["error"]["param"] == "continue_final_message"


# -- the inspector ----------------------------------------------------------------------------


def test_the_inspector_shows_the_request_as_openai_json_and_as_oip_tensors(http):
    cid = chat(http, "What is OIP?", max_tokens=6, system="Be brief.", **SEEDED)
    reply = reply_of(http, cid)
    page = inspector(http, reply["id"])
    assert wire(page, "openai") == {
        "model": "tiny-chat",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "What is OIP?"},
        ],
        "temperature": 0.8,
        "max_tokens": 6,
        "seed": 1234,
        "stream": True,
    }
    oip = wire(page, "oip")
    assert oip["inputs"] == [
        {"name": "role", "shape": [2], "datatype": "BYTES", "data": ["system", "user"]},
        {
            "name": "content",
            "shape": [2],
            "datatype": "BYTES",
            "data": ["Be brief.", "What is OIP?"],
        },
        {"name": "type", "shape": [2], "datatype": "BYTES", "data": ["text", "text"]},
    ]
    assert oip["parameters"] == {"max_tokens": 6, "temperature": 0.8, "seed": 1234}
    # The tensors are a real request: the OIP route gives the same reply for them.
    answer = http.post("/v2/models/tiny-chat/infer", json=oip)
    assert answer.status_code == 200, answer.text
    content = next(o for o in answer.json()["outputs"] if o["name"] == "content")
    assert content["data"] == [reply["content"]]


# -- run cards --------------------------------------------------------------------------------


def rerun(http: httpx.Client, mid: str) -> str:
    answer = http.post(f"/ui/runs/{mid}/rerun", headers=PAGE)
    assert answer.status_code == 200, answer.text
    return answer.text


def test_a_run_card_lists_what_made_the_reply_and_reproduces_it(http):
    cid = chat(http, "Reproduce me", max_tokens=10, **SEEDED)
    reply = reply_of(http, cid)
    card = http.get(f"/ui/runs/{reply['id']}")
    assert card.status_code == 200
    assert "frame-ancestors 'none'" in card.headers["content-security-policy"]
    for shown in ("tiny-chat", reply["meta"]["digest"], reply["meta"]["server_version"], "1234"):
        assert shown in card.text
    assert f'hx-post="/ui/runs/{reply["id"]}/rerun"' in card.text
    verdict = rerun(http, reply["id"])
    assert 'data-outcome="identical"' in verdict, verdict


def test_first_difference_is_the_index_of_the_first_unequal_character():
    assert first_difference("abc", "abc") is None
    assert first_difference("abc", "abd") == 2
    assert first_difference("ab", "abc") == 2
    assert first_difference("", "x") == 0


@pytest.fixture(scope="module")
def replaceable(apps: Apps, tiny_dir: Path) -> Iterator[InProcessApp]:
    """An app whose chat model is a file the test may replace."""
    config = apps.config(model_toml("swap-chat", "llama-cpp", "model.gguf", n_ctx=512, threads=1))
    shutil.copy(tiny_dir / "tiny.gguf", config.parent / "model.gguf")
    with apps.shared(config) as running:
        yield running


def test_a_run_card_reports_a_replaced_model_file_and_the_changed_output(replaceable, tmp_path):
    with replaceable.client() as http:
        job = job_of(
            http.post(
                "/ui/chat",
                data={"model": "swap-chat", "message": "Hi", "max_tokens": "10", **SEEDED},
                headers=PAGE,
            ).text
        )
        done = list(frames(http, job))[-1]
        cid = re.search(r'/ui/chat/([^/"]+)/regenerate/', done["data"])[1]
        reply = reply_of(http, cid)
        assert 'data-outcome="identical"' in rerun(http, reply["id"])
        model = replaceable.folder / "model.gguf"
        build_tiny_gguf(tmp_path / "other.gguf", name="other", n_embd=128, n_ff=256)
        shutil.copy(tmp_path / "other.gguf", model)
        assert http.post("/v2/repository/models/swap-chat/unload").status_code == 200
        assert http.post("/v2/repository/models/swap-chat/load").status_code == 200
        verdict = rerun(http, reply["id"])
        assert 'data-outcome="different"' in verdict, verdict
        assert "The model file has changed" in verdict
        assert reply["meta"]["digest"] in verdict


# -- bad input --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def plain_reply(app: InProcessApp) -> dict:
    """A stored reply without token probabilities, and its conversation's user message."""
    with app.client() as http:
        cid = chat(http, "Plain", max_tokens=4)
        user, reply = export(http, cid)["messages"]
        return {"cid": cid, "user": user["id"], "reply": reply["id"]}


@pytest.mark.parametrize(
    ("method", "path", "form", "status"),
    [
        ("GET", "/ui/replies/no-such-reply/inspect", None, 404),
        ("GET", "/ui/replies/{user}/inspect", None, 404),
        ("GET", "/ui/replies/no-such-reply/tokens/0", None, 404),
        ("GET", "/ui/replies/{reply}/tokens/0", None, 404),
        ("GET", "/ui/replies/{reply}/tokens/-1", None, 404),
        ("GET", "/ui/runs/no-such-reply", None, 404),
        ("GET", "/ui/runs/{user}", None, 404),
        ("POST", "/ui/runs/no-such-reply/rerun", None, 404),
        ("POST", "/ui/chat/{cid}/branch/no-such-reply", {"index": "0", "alternative": "0"}, 404),
        ("POST", "/ui/chat/no-such-chat/branch/{reply}", {"index": "0", "alternative": "0"}, 404),
        ("POST", "/ui/chat/{cid}/branch/{user}", {"index": "0", "alternative": "0"}, 400),
        ("POST", "/ui/chat/{cid}/branch/{reply}", {"index": "0", "alternative": "0"}, 400),
        ("POST", "/ui/chat/{cid}/branch/{reply}", {"index": "x", "alternative": "0"}, 400),
        ("POST", "/ui/chat/{cid}/branch/{reply}", {}, 400),
    ],
)
def test_bad_ids_and_bad_fields_get_a_clear_4xx(http, plain_reply, method, path, form, status):
    answer = http.request(method, path.format(**plain_reply), data=form, headers=PAGE)
    assert answer.status_code == status, answer.text
    assert 'class="error-msg"' in answer.text and len(answer.text) < 2000


def test_a_token_index_that_is_not_a_number_matches_no_route(http, plain_reply):
    answer = http.get(f"/ui/replies/{plain_reply['reply']}/tokens/abc", headers=PAGE)
    assert answer.status_code == 404


def test_branch_from_a_token_or_an_alternative_the_reply_lacks_is_404(http):
    cid = chat(http, "Short", max_tokens=3, **WITH_TOKENS)
    reply = reply_of(http, cid)
    for form, word in (
        ({"index": "3", "alternative": "0"}, "no token 3"),
        ({"index": "0", "alternative": "3"}, "no alternative 3"),
    ):
        answer = http.post(f"/ui/chat/{cid}/branch/{reply['id']}", data=form, headers=PAGE)
        assert answer.status_code == 404 and word in answer.text
    too_many = http.post(
        "/ui/chat",
        data={"model": "tiny-chat", "message": "x", "logprobs": "on", "top_logprobs": "21"},
        headers=PAGE,
    )
    assert too_many.status_code == 400 and "Alternatives must be from 0 to 20" in too_many.text


def test_the_new_routes_refuse_foreign_hosts_and_foreign_pages(http, plain_reply):
    for method, path in (
        ("GET", "/ui/replies/{reply}/inspect"),
        ("GET", "/ui/runs/{reply}"),
        ("POST", "/ui/runs/{reply}/rerun"),
    ):
        url = path.format(**plain_reply)
        foreign = http.request(method, url, headers={**PAGE, "Host": "evil.test"})
        assert foreign.status_code == 403, url
    page_from_elsewhere = http.post(
        f"/ui/runs/{plain_reply['reply']}/rerun",
        headers={**PAGE, "Origin": "http://evil.test"},
    )
    assert page_from_elsewhere.status_code == 403
    no_htmx = http.post(f"/ui/runs/{plain_reply['reply']}/rerun")
    assert no_htmx.status_code == 403


def test_the_new_routes_need_a_session_or_the_key(keyed_app: InProcessApp):
    """Inspector, token alternatives, branch and run cards sit behind the sign-in."""
    routes = (
        ("GET", "/ui/replies/x/inspect"),
        ("GET", "/ui/replies/x/tokens/0"),
        ("GET", "/ui/runs/x"),
        ("POST", "/ui/runs/x/rerun"),
        ("POST", "/ui/chat/c/branch/x"),
    )
    with keyed_app.client() as anyone:
        for method, path in routes:
            refused = anyone.request(method, path, headers=PAGE, data={"index": "0"})
            assert refused.status_code == 401 and "signed out" in refused.text, path
    with keyed_app.client() as client:
        assert client.post("/signin", data={"key": KEY}).status_code == 303
        for method, path in routes:
            answer = client.request(method, path, headers=PAGE, data={"index": "0"})
            assert answer.status_code in (400, 404) and "signed out" not in answer.text, path
    bearer = {**PAGE, "Authorization": f"Bearer {KEY}"}
    with keyed_app.client() as anyone:
        assert anyone.get("/ui/runs/x", headers=bearer).status_code == 404
