"""The Arena, the embedding map and image jobs over HTTP, in process with tiny models: columns
as jobs with one seed, the word diff, the blind vote kept, image grids, Stop and stored images
(across a crash: e2e/test_playground_crash.py), the map's PCA and the neighbour overlap checked
against numpy on the same vectors from /v1/embeddings, and every bad input a clear 4xx."""

from __future__ import annotations

import re

import httpx
import numpy as np
import pytest
from support.configs import API_KEY
from support.inprocess import InProcessApp
from support.playground import SENTENCES, slow_images

PAGE = {"HX-Request": "true"}


def as_form(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    """Fields that repeat (a column's model and temperature), as httpx sends them."""
    out: dict[str, list[str]] = {}
    for key, value in pairs:
        out.setdefault(key, []).append(value)
    return out


def start_arena(http: httpx.Client, columns: list[tuple[str, str]], **form: str) -> str:
    """POST a text arena the way the page does; its HTML."""
    data = list({"prompt": "Say something.", "max_tokens": "24", **form}.items())
    for model, temperature in columns:
        data += [("model", model), ("temperature", temperature)]
    answer = http.post("/ui/arena", data=as_form(data), headers=PAGE)
    assert answer.status_code == 200, answer.text
    return answer.text


def arena_id(html: str) -> str:
    return re.search(r'data-arena="([^"]+)"', html)[1]


def column_streams(html: str) -> list[str]:
    return re.findall(r'sse-connect="(/ui/arena/[^"]+/stream/[^"]+)"', html)


def finish(http: httpx.Client, html: str) -> list[str]:
    """Follow every column's stream to its end; the final HTML of each column."""
    finals = []
    for url in column_streams(html):
        with http.stream("GET", url) as answer:
            body = answer.read().decode()
        finals.append(body.rsplit("event: done", 1)[1])
    return finals


# -- the text arena ------------------------------------------------------------------------------


def test_two_models_answer_one_prompt_as_sibling_replies_with_one_seed(http: httpx.Client) -> None:
    html = start_arena(http, [("tiny-chat", "0.7"), ("slow-chat", "0.7")], seed="123")
    assert len(column_streams(html)) == 2 and "seed 123 in every column" in html
    finals = finish(http, html)
    for final, model in zip(finals, ("tiny-chat", "slow-chat"), strict=True):
        assert f"{model} · temperature 0.7" in final
        assert re.search(r"\d+\.\d tokens/s", final), final  # each column's own speed
        assert "24 tokens" in final and "finish: length" in final
    cid = re.search(r'href="/\?c=([^"#]+)', html)[1]
    stored = http.get(f"/ui/conversations/{cid}/export.json").json()["messages"]
    user, *replies = stored
    assert user["content"] == "Say something." and len(replies) == 2
    assert {r["parent"] for r in replies} == {user["id"]}  # siblings
    assert [r["meta"]["seed"] for r in replies] == [123, 123]
    assert [r["meta"]["model"] for r in replies] == ["tiny-chat", "slow-chat"]
    assert all(r["meta"]["tokens_per_second"] > 0 for r in replies)


def test_one_model_twice_with_the_seed_locked_writes_the_same_text(http: httpx.Client) -> None:
    html = start_arena(http, [("tiny-chat", "0.9"), ("tiny-chat", "0.9")])
    seed = re.search(r"seed (\d+) in every column", html)[1]  # drawn once, for both
    finish(http, html)
    compare = http.get(f"/ui/arena/{arena_id(html)}/compare")
    assert compare.status_code == 200
    assert 'data-share="1.0000"' in compare.text and "<del>" not in compare.text
    assert int(seed) >= 0


def test_the_word_diff_compares_any_two_columns_once_they_have_finished(
    http: httpx.Client,
) -> None:
    html = start_arena(
        http, [("tiny-chat", "0"), ("tiny-chat", "1.5"), ("slow-chat", "0")], max_tokens="400"
    )
    aid = arena_id(html)
    early = http.get(f"/ui/arena/{aid}/compare")
    assert early.status_code == 409 and "Wait until every reply is finished" in early.text
    finish(http, html)
    pair = http.get(f"/ui/arena/{aid}/compare", params={"first": 2, "second": 0})
    assert pair.status_code == 200
    assert '<option value="2" selected>C</option>' in pair.text
    assert re.search(r"<(del|ins)>", pair.text)  # different models write different words


def test_a_blind_vote_is_kept_with_the_arena_and_shown_after_the_reveal(
    http: httpx.Client,
) -> None:
    html = start_arena(http, [("tiny-chat", "0.2"), ("slow-chat", "0.2")], blind="on")
    assert 'class="who"' not in html and "blind" in html
    finals = finish(http, html)
    assert all("tiny-chat" not in f and "slow-chat" not in f for f in finals)
    aid = arena_id(html)
    compare = http.get(f"/ui/arena/{aid}/compare").text
    assert "slow-chat" not in compare and "Reveal without voting" in compare
    choice = re.findall(r'"choice": "([^"]+)"', compare)[1]  # B
    voted = http.post(f"/ui/arena/{aid}/vote", data={"choice": choice}, headers=PAGE)
    assert voted.status_code == 200
    assert "slow-chat · temperature 0.2" in voted.text and "your vote" in voted.text
    again = http.get(f"/ui/arena/{aid}")  # as a reload shows it
    assert 'class="arena-column voted" id="column-' + choice in again.text
    assert (
        "Your vote: <b>B — slow-chat · temperature 0.2</b>"
        in http.get(f"/ui/arena/{aid}/compare").text
    )
    twice = http.post(f"/ui/arena/{aid}/vote", data={"choice": "tie"}, headers=PAGE)
    assert twice.status_code == 409 and "has its vote already" in twice.text
    page = http.get("/").text
    assert f'data-arena="{aid}"' in page  # the Arena tab opens on it


def conversation_of(html: str) -> str:
    return re.search(r'href="/\?c=([^"#]+)', html)[1]


def chat_turns(http: httpx.Client, cid: str, mid: str) -> str:
    """The Chat tab's turns of conversation `cid`, showing the branch through reply `mid`."""
    shown = http.post(f"/ui/conversations/{cid}/show/{mid}", headers=PAGE)
    assert shown.status_code == 200, shown.text
    return shown.text


def test_a_blind_arena_opened_in_the_chat_tab_hides_the_models_until_the_vote(
    http: httpx.Client,
) -> None:
    html = start_arena(http, [("tiny-chat", "0.2"), ("slow-chat", "0.2")], blind="on")
    finish(http, html)
    aid, cid = arena_id(html), conversation_of(html)
    replies = [
        m["id"] for m in http.get(f"/ui/conversations/{cid}/export.json").json()["messages"][1:]
    ]
    for letter, mid in zip("AB", replies, strict=True):
        turns = chat_turns(http, cid, mid)
        assert f'<span class="who">Column {letter}</span>' in turns
        assert "tiny-chat" not in turns and "slow-chat" not in turns, turns
        assert "temperature" not in turns and f"/ui/runs/{mid}" not in turns
        assert f'href="/?arena={aid}#arena">Vote in the Arena tab</a>' in turns
    page = http.get("/", params={"c": cid}).text
    assert "Column B" in page and "Vote in the Arena tab" in page
    voted = http.post(f"/ui/arena/{aid}/vote", data={"choice": "tie"}, headers=PAGE)
    assert voted.status_code == 200
    turns = chat_turns(http, cid, replies[1])
    assert '<span class="who">slow-chat</span>' in turns and f"/ui/runs/{replies[1]}" in turns
    assert "Vote in the Arena tab" not in turns


def test_the_page_opens_the_arena_it_is_given_and_refuses_an_unknown_one(
    http: httpx.Client,
) -> None:
    first = arena_id(start_arena(http, [("tiny-chat", "0.2"), ("tiny-chat", "0.4")]))
    later = start_arena(http, [("tiny-chat", "0.2"), ("tiny-chat", "0.6")])
    finish(http, later)
    assert f'data-arena="{first}"' in http.get("/", params={"arena": first}).text
    unknown = http.get("/", params={"arena": "no-such-arena"})
    assert unknown.status_code == 404 and "There is no arena" in unknown.text


def test_the_vote_goes_with_the_conversation_into_its_export_and_back(http: httpx.Client) -> None:
    html = start_arena(http, [("tiny-chat", "0.2"), ("slow-chat", "0.2")], blind="on")
    finish(http, html)
    aid, cid = arena_id(html), conversation_of(html)
    exported = http.get(f"/ui/conversations/{cid}/export.json").json()
    replies = [m["id"] for m in exported["messages"][1:]]
    assert exported["arenas"] == [
        {
            "prompt": "Say something.",
            "seed": exported["arenas"][0]["seed"],
            "columns": [
                {"id": replies[0], "label": "tiny-chat · temperature 0.2"},
                {"id": replies[1], "label": "slow-chat · temperature 0.2"},
            ],
            "blind": True,
            "vote": None,
            "revealed": False,
        }
    ]
    http.post(f"/ui/arena/{aid}/vote", data={"choice": replies[1]}, headers=PAGE)
    kept = http.get(f"/ui/conversations/{cid}/export.json").json()
    assert kept["arenas"][0]["vote"] == replies[1] and kept["arenas"][0]["revealed"] is True
    imported = http.post(
        "/ui/conversations/import",
        data={
            "filename": "arena.json",
            "data": http.get(f"/ui/conversations/{cid}/export.json").text,
        },
        headers=PAGE,
    )
    new_cid = imported.headers["hx-redirect"].split("c=")[1]
    again = http.get(f"/ui/conversations/{new_cid}/export.json").json()
    new_replies = [m["id"] for m in again["messages"][1:]]
    assert set(new_replies).isdisjoint(replies)  # an import gives new ids
    [arena] = again["arenas"]
    assert arena["vote"] == new_replies[1] and arena["revealed"] and arena["blind"]
    assert [c["id"] for c in arena["columns"]] == new_replies
    assert arena["seed"] == kept["arenas"][0]["seed"]


def test_reveal_without_a_vote_shows_who_is_who(http: httpx.Client) -> None:
    html = start_arena(http, [("tiny-chat", "0.2"), ("tiny-chat", "1.0")], blind="on")
    finish(http, html)
    revealed = http.post(f"/ui/arena/{arena_id(html)}/reveal", headers=PAGE)
    assert "tiny-chat · temperature 1" in revealed.text and "your vote" not in revealed.text


def test_stop_all_stops_every_column(http: httpx.Client) -> None:
    html = start_arena(http, [("slow-chat", "0.5"), ("slow-chat", "0.9")], max_tokens="1900")
    stopped = http.post(f"/ui/arena/{arena_id(html)}/stop", headers=PAGE)
    assert stopped.status_code == 200
    assert stopped.text.count("finish: stopped") == 2 and 'aria-busy="true"' not in stopped.text


def test_arenas_are_bounded_by_the_jobs_the_playground_runs_at_once(http: httpx.Client) -> None:
    slow = [("slow-chat", str(t)) for t in (0.1, 0.2, 0.3, 0.4)]
    running = [arena_id(start_arena(http, slow, max_tokens="1900")) for _ in range(2)]
    refused = http.post(
        "/ui/arena",
        data=as_form([("prompt", "x"), ("model", "tiny-chat"), ("model", "tiny-chat")]),
        headers=PAGE,
    )
    assert refused.status_code == 429 and "running already" in refused.text
    grid = {"model": "tiny-sd", "prompt": "x", "axis": "seed", "values": "1 2"}
    assert http.post("/ui/arena/images", data=grid, headers=PAGE).status_code == 429
    for aid in running:
        assert http.post(f"/ui/arena/{aid}/stop", headers=PAGE).text.count("finish: stopped") == 4


@pytest.mark.parametrize(
    ("data", "status", "words"),
    [
        ([("prompt", "x"), ("model", "tiny-chat"), ("model", "nope")], 404, "nknown model"),
        ([("prompt", "x"), *[("model", "tiny-chat")] * 5], 400, "at most 4 columns"),
        ([("prompt", "x"), ("model", "tiny-chat")], 400, "at least two columns"),
        ([("prompt", "x"), ("model", "tiny-chat"), ("model", "minilm")], 400, "cannot chat"),
        ([("prompt", "x"), ("model", "tiny-chat"), ("model", "missing")], 503, "not available"),
        ([("model", "tiny-chat"), ("model", "slow-chat")], 400, "Type the prompt"),
        (
            [("prompt", "x"), ("model", "tiny-chat"), ("model", "tiny-chat"), ("seed", "s")],
            400,
            "Seed must be a whole number",
        ),
    ],
)
def test_bad_arena_requests_are_clear_4xx(
    http: httpx.Client, data: list[tuple[str, str]], status: int, words: str
) -> None:
    answer = http.post("/ui/arena", data=as_form(data), headers=PAGE)
    assert answer.status_code == status and words in answer.text, answer.text


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/ui/arena/nope"),
        ("GET", "/ui/arena/nope/compare"),
        ("GET", "/ui/arena/nope/stream/x"),
        ("POST", "/ui/arena/nope/vote"),
        ("POST", "/ui/arena/nope/reveal"),
        ("POST", "/ui/arena/nope/stop"),
        ("POST", "/ui/images/stop"),
        ("GET", "/ui/images/files/nope.png"),
    ],
)
def test_unknown_ids_are_404(http: httpx.Client, method: str, path: str) -> None:
    answer = http.request(method, path, headers=PAGE, data={"job": "nope", "choice": "tie"})
    assert answer.status_code == 404, answer.text
    assert "no arena" in answer.text or "no images" in answer.text or "no picture" in answer.text


def test_bad_comparisons_and_columns_are_400(http: httpx.Client) -> None:
    html = start_arena(http, [("tiny-chat", "0"), ("tiny-chat", "0")])
    aid = arena_id(html)
    finish(http, html)
    for params, words in (
        ({"first": 0, "second": 0}, "two different columns"),
        ({"first": 3}, "columns 0 to 1, not 3"),
        ({"first": "x"}, "must be a whole number, not “x”"),
        ({"second": 99}, "from 0 to 3; it is 99"),
    ):
        answer = http.get(f"/ui/arena/{aid}/compare", params=params)
        assert answer.status_code == 400 and words in answer.text, answer.text
    column = http.get(f"/ui/arena/{aid}/stream/not-a-column")
    assert column.status_code == 400 and "not a column" in column.text
    vote = http.post(f"/ui/arena/{aid}/vote", data={"choice": "someone"}, headers=PAGE)
    assert vote.status_code == 400 and "not a side" in vote.text


def test_malformed_json_and_foreign_requests_are_refused(http: httpx.Client) -> None:
    body = http.post(
        "/ui/arena",
        content=b'{"prompt": "x", "model": [',
        headers={**PAGE, "content-type": "application/json"},
    )
    assert body.status_code == 415 and "application/x-www-form-urlencoded" in body.text
    no_htmx = http.post("/ui/arena", data={"prompt": "x", "model": ["tiny-chat"] * 2})
    assert no_htmx.status_code == 403
    for path in ("/ui/arena", "/ui/arena/images", "/ui/images/stop", "/ui/embeddings"):
        foreign = http.post(path, data={"prompt": "x"}, headers={**PAGE, "Origin": "http://e.x"})
        assert foreign.status_code == 403, path
        host = http.post(path, data={"prompt": "x"}, headers={**PAGE, "Host": "evil.example"})
        assert host.status_code == 403, path
    assert http.get("/ui/arena/x", headers={"Host": "evil.example"}).status_code == 403


# -- image grids and image jobs ------------------------------------------------------------------


def image_streams(html: str) -> list[str]:
    return re.findall(r'sse-connect="(/ui/images/[^"/]+/stream)"', html)


def test_an_image_grid_over_seeds_makes_one_picture_per_seed(http: httpx.Client) -> None:
    answer = http.post(
        "/ui/arena/images",
        data={"model": "tiny-sd", "prompt": "a fox", "axis": "seed", "values": "1, 2, 3"},
        headers=PAGE,
    )
    assert answer.status_code == 200, answer.text
    streams = image_streams(answer.text)
    assert len(streams) == 3
    seeds = []
    for url in streams:
        done = http.get(url).text.rsplit("event: done", 1)[1]
        assert '<img src="/ui/images/files/' in done
        seeds.append(int(re.search(r"seed <b>(\d+)</b>", done)[1]))
    assert seeds == [1, 2, 3]
    shown = http.get(f"/ui/arena/{arena_id(answer.text)}").text
    assert shown.count('<img src="/ui/images/files/') == 3 and "seed 2" in shown


def test_an_image_grid_over_steps_locks_one_seed(http: httpx.Client) -> None:
    answer = http.post(
        "/ui/arena/images",
        data={"model": "tiny-sd", "prompt": "a fox", "axis": "steps", "values": "1 2"},
        headers=PAGE,
    )
    assert answer.status_code == 200, answer.text
    seed = int(re.search(r"seed (\d+) in every cell", answer.text)[1])
    pngs = []
    for url in image_streams(answer.text):
        done = http.get(url).text.rsplit("event: done", 1)[1]
        assert int(re.search(r"seed <b>(\d+)</b>", done)[1]) == seed
        pngs.append(http.get(re.search(r'<img src="([^"]+)"', done)[1]).content)
    assert pngs[0] != pngs[1]  # 1 step and 2 steps from the same noise differ


@pytest.mark.parametrize(
    ("data", "status", "words"),
    [
        ({"model": "nope", "values": "1 2"}, 404, "nknown model"),
        ({"model": "tiny-chat", "values": "1 2"}, 400, "cannot generate images"),
        ({"model": "hub-offline", "values": "1 2"}, 503, "not available"),
        ({"model": "tiny-sd", "values": "1"}, 400, "2 to 6 values"),
        ({"model": "tiny-sd", "values": "1 2 3 4 5 6 7"}, 400, "there are 7"),
        ({"model": "tiny-sd", "values": "3 3"}, 400, "once"),
        ({"model": "tiny-sd", "values": "1 2", "axis": "size"}, 400, "seed or the steps"),
        ({"model": "tiny-sd", "values": "1 2", "size": "100x100"}, 400, "multiple of 8"),
        ({"model": "tiny-sd", "values": "1 2", "prompt": " "}, 400, "Describe the image"),
    ],
)
def test_bad_image_grids_are_clear_4xx(
    http: httpx.Client, data: dict[str, str], status: int, words: str
) -> None:
    form = {"prompt": "a fox", "axis": "seed", **data}
    answer = http.post("/ui/arena/images", data=form, headers=PAGE)
    assert answer.status_code == status and words in answer.text, answer.text


def test_stop_cancels_an_image_job_for_every_reader(http: httpx.Client) -> None:
    job, first, reader = slow_images(http, "a slow fox")
    assert first["event"] == "progress"
    stopped = http.post("/ui/images/stop", data={"job": job}, headers=PAGE)
    assert stopped.status_code == 200
    assert stopped.headers["hx-retarget"] == f"#image-job-{job}"
    step = int(re.search(r"Stopped by you at step (\d+) of 500", stopped.text)[1])
    assert step < 500
    rest = list(reader)
    assert rest[-1]["event"] == "done" and "Stopped by you" in rest[-1]["data"]
    # The model is free at once: a short job after it finishes.
    quick = http.post("/ui/images", data={"model": "tiny-sd", "prompt": "x"}, headers=PAGE)
    quick_job = re.search(r'sse-connect="/ui/images/([^/"]+)/stream"', quick.text)[1]
    assert "<img" in http.get(f"/ui/images/{quick_job}/stream").text
    page = http.get("/").text  # kept: the Images tab lists it, stopped
    assert f'id="image-job-{job}" data-status="stopped"' in page


# -- the embedding map ---------------------------------------------------------------------------


def embed(http: httpx.Client, model: str, texts: list[str]) -> np.ndarray:
    data = http.post("/v1/embeddings", json={"model": model, "input": texts}).json()["data"]
    return np.array([d["embedding"] for d in data], dtype=np.float64)


def map_of(http: httpx.Client, model: str, other: str = "", texts: list[str] = SENTENCES) -> str:
    answer = http.post(
        "/ui/embeddings",
        data={"model": model, "other_model": other, "sentences": "\n".join(texts)},
        headers=PAGE,
    )
    assert answer.status_code == 200, answer.text
    return answer.text


def test_the_map_has_a_point_per_sentence_at_its_principal_components(
    http: httpx.Client,
) -> None:
    html = map_of(http, "minilm")
    shown = np.array(
        [[float(x), float(y)] for x, y in re.findall(r'data-x="([^"]+)" data-y="([^"]+)"', html)]
    )
    assert shown.shape == (len(SENTENCES), 2)
    # The same PCA, done here on the vectors the API gives: centre, SVD, and each component's
    # largest entry made positive.
    vectors = embed(http, "minilm", SENTENCES)
    centred = vectors - vectors.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    expected = np.stack([centred @ (v * np.sign(v[np.argmax(np.abs(v))])) for v in vt[:2]], axis=1)
    assert np.allclose(shown, expected, atol=1e-5)
    assert html.count('class="neighbour-list"') == len(SENTENCES)


def test_two_models_are_compared_by_their_neighbour_overlap(http: httpx.Client) -> None:
    html = map_of(http, "minilm", "tiny-embed")
    k = 3  # of 6 others, at most half

    def neighbours(vectors: np.ndarray) -> list[set[int]]:
        unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        similarity = unit @ unit.T
        return [
            set(sorted((j for j in range(len(row)) if j != i), key=lambda j: -row[j])[:k])
            for i, row in enumerate(similarity)
        ]

    mine = neighbours(embed(http, "minilm", SENTENCES))
    theirs = neighbours(embed(http, "tiny-embed", SENTENCES))
    expected = [len(a & b) / k for a, b in zip(mine, theirs, strict=True)]
    shown = [float(v) for v in re.findall(r'<tr data-sentence="\d+" data-overlap="([^"]+)"', html)]
    assert shown == pytest.approx(expected, abs=1e-6)
    mean = float(re.search(r'class="overlap-mean" data-overlap="([^"]+)"', html)[1])
    assert mean == pytest.approx(sum(expected) / len(expected), abs=1e-6)
    assert "(3 nearest each)" in html


@pytest.mark.parametrize(
    ("model", "other", "count", "status", "words"),
    [
        ("minilm", "nope", 3, 404, "nknown model"),
        ("nope", "", 3, 404, "nknown model"),
        ("minilm", "minilm", 3, 400, "different model"),
        ("minilm", "tiny-sd", 3, 400, "cannot make embeddings"),
        ("minilm", "", 25, 400, "at most 24 sentences"),
        ("minilm", "", 1, 400, "at least two sentences"),
    ],
)
def test_bad_maps_are_clear_4xx(
    http: httpx.Client, model: str, other: str, count: int, status: int, words: str
) -> None:
    texts = [f"sentence {i}" for i in range(count)]
    answer = http.post(
        "/ui/embeddings",
        data={"model": model, "other_model": other, "sentences": "\n".join(texts)},
        headers=PAGE,
    )
    assert answer.status_code == status and words in answer.text, answer.text


# -- sign-in -------------------------------------------------------------------------------------


def test_the_new_routes_need_a_session_and_refuse_foreign_pages(keyed_app: InProcessApp) -> None:
    routes = (
        ("POST", "/ui/arena"),
        ("POST", "/ui/arena/images"),
        ("GET", "/ui/arena/x"),
        ("GET", "/ui/arena/x/compare"),
        ("GET", "/ui/arena/x/stream/y"),
        ("POST", "/ui/arena/x/vote"),
        ("POST", "/ui/arena/x/reveal"),
        ("POST", "/ui/arena/x/stop"),
        ("POST", "/ui/images/stop"),
        ("GET", "/ui/images/files/x.png"),
        ("POST", "/ui/embeddings"),
    )
    with keyed_app.client() as anyone:
        for method, path in routes:
            refused = anyone.request(method, path, headers=PAGE, data={"prompt": "x"})
            assert refused.status_code == 401 and "signed out" in refused.text, path
    with keyed_app.client() as client:
        assert client.post("/signin", data={"key": API_KEY}).status_code == 303
        assert client.get("/ui/arena/x").status_code == 404  # past the check: no such arena
        columns = {"model": ["tiny-chat", "tiny-chat-2"], "prompt": "hi"}
        html = client.post("/ui/arena", data=columns, headers=PAGE)
        assert html.status_code == 200, html.text
        assert all("event: done" in client.get(u).text for u in column_streams(html.text))
        foreign = client.post(
            "/ui/arena", data=columns, headers={**PAGE, "Origin": "http://evil.test"}
        )
        assert foreign.status_code == 403
