"""Models loaded on demand within a budget ([server] load, max_loaded_models, max_memory),
in process: the least recently used idle model makes room, a busy one never does,
and a request that cannot fit gets 503 in its protocol's shape, saying why."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from support.configs import slow_chat, tiny_chat
from support.inprocess import Apps

HI = [{"role": "user", "content": "hi"}]


@contextmanager
def serve(apps: Apps, server: str, models: str) -> Iterator[httpx.Client]:
    """A client on an app of `models` with these [server] settings."""
    with apps.shared(f"[server]\n{server}\n\n{models}") as running, running.client() as client:
        yield client


@pytest.fixture(scope="module")
def lazy(apps: Apps, tiny_dir: Path) -> Iterator[httpx.Client]:
    """On demand, two local models at most: a, b and c are the tiny chat model."""
    models = "".join(tiny_chat(tiny_dir, name=name) for name in ("a", "b", "c"))
    with serve(apps, 'load = "on-demand"\nmax_loaded_models = 2', models) as client:
        yield client


def index(server: httpx.Client) -> dict[str, dict]:
    entries = server.post("/v2/repository/index", timeout=30).json()
    return {entry["name"]: entry for entry in entries}


def chat(server: httpx.Client, model: str, route: str = "/v1/chat/completions") -> httpx.Response:
    body = {"model": model, "messages": HI, "max_tokens": 3}
    return server.post(route, json=body, timeout=60)


def test_on_demand_models_start_unloaded_yet_ready_for_probes(lazy):
    models = index(lazy)
    for name in ("a", "b", "c"):
        if models[name]["reason"]:  # not yet asked for by an earlier test
            assert models[name]["reason"] == "not loaded yet; loads on the first request"
        assert lazy.get(f"/v2/models/{name}/ready").status_code == 200
    assert lazy.get("/v2/health/ready").status_code == 200


def test_past_the_budget_the_least_recently_used_idle_model_unloads(lazy, caplog):
    caplog.set_level(logging.INFO, logger="localoip")
    for model in ("a", "b", "a"):  # b is now the least recently used
        assert chat(lazy, model).status_code == 200
    models = index(lazy)
    assert models["a"]["reason"] == models["b"]["reason"] == ""  # both loaded

    assert chat(lazy, "c").status_code == 200
    models = index(lazy)
    assert models["a"]["state"] == models["c"]["state"] == "READY"
    assert models["a"]["reason"] == models["c"]["reason"] == ""
    assert models["b"]["reason"] == "unloaded to make room for 'c'; loads on the next request"
    assert "model 'b': unloading to make room for 'c'" in caplog.text

    # b comes back on its next request, and a (now the least recently used) makes room.
    assert chat(lazy, "b").status_code == 200
    assert index(lazy)["a"]["reason"] == "unloaded to make room for 'b'; loads on the next request"


@pytest.fixture(scope="module")
def one_slot(apps: Apps, tiny_dir: Path) -> Iterator[httpx.Client]:
    """Eager, one local model at most: slow-chat loads at start-up, tiny does not."""
    models = slow_chat(tiny_dir) + tiny_chat(tiny_dir, name="tiny")
    with serve(apps, "max_loaded_models = 1", models) as client:
        yield client


def test_eager_loading_stops_at_the_budget_and_leaves_the_rest_on_demand(one_slot):
    models = index(one_slot)
    assert models["slow-chat"]["state"] == "READY"
    assert models["tiny"]["reason"] == (
        "not loaded at start-up: the budget is full (max_loaded_models = 1); "
        "loads on the first request"
    )


def test_a_model_that_cannot_fit_beside_a_busy_one_gets_503_in_each_shape(one_slot):
    started, stop = threading.Event(), threading.Event()

    def hold() -> None:
        body = {"model": "slow-chat", "messages": HI, "max_tokens": 1900, "stream": True}
        with one_slot.stream("POST", "/v1/chat/completions", json=body, timeout=120) as response:
            for _ in response.iter_lines():
                started.set()
                if stop.is_set():
                    return

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    try:
        assert started.wait(60)
        refused = chat(one_slot, "tiny")
        assert refused.status_code == 503
        error = refused.json()["error"]
        assert error["type"] == "server_error" and error["code"] == "model_not_ready"
        assert "does not fit while slow-chat is busy (max_loaded_models = 1)" in error["message"]
        tensor = {"name": "prompt", "shape": [1], "datatype": "BYTES", "data": ["a"]}
        oip = one_slot.post("/v2/models/tiny/infer", json={"inputs": [tensor]})
        assert oip.status_code == 503 and "slow-chat is busy" in oip.json()["error"]
        assert index(one_slot)["slow-chat"]["state"] == "READY"  # untouched, still streaming
    finally:
        stop.set()
        holder.join(60)
    # Once it is idle, it makes room.
    answer = chat(one_slot, "tiny")
    assert answer.status_code == 200, answer.text
    assert index(one_slot)["slow-chat"]["reason"].startswith("unloaded to make room for 'tiny'")


def test_a_model_bigger_than_max_memory_gets_503_saying_so(apps, tiny_dir):
    settings = 'load = "on-demand"\nmax_memory = "64KiB"'
    with serve(apps, settings, tiny_chat(tiny_dir)) as server:
        refused = chat(server, "tiny-chat")
        assert refused.status_code == 503
        message = refused.json()["error"]["message"]
        assert "'tiny-chat' needs about" in message and "more than max_memory (0 MiB)" in message
        assert server.get("/v2/health/live").status_code == 200
        again = chat(server, "tiny-chat", "/v2/models/tiny-chat/infer/chat/completions")
        assert again.status_code == 503 and again.json()["error"]["code"] == "model_not_ready"
