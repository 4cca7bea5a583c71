"""OpenAI error envelopes: every bad input is a 4xx the SDK raises with .param and .code set."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from support.inprocess import Apps, InProcessApp

HI = [{"role": "user", "content": "hi"}]


def assert_envelope(
    response: httpx.Response, status: int, param: str | None, code: str | None = None
):
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"] and error["param"] == param
    if code is not None:
        assert error["code"] == code
    return error


@pytest.mark.parametrize(
    ("body", "param", "needle"),
    [
        ({"model": "tiny-chat"}, "messages", "missing required field"),
        ({"model": "tiny-chat", "messages": []}, "messages", "length >= 1"),
        (
            {"model": "tiny-chat", "messages": [{"role": "robot", "content": "x"}]},
            "messages[0].role",
            "robot",
        ),
        ({"model": "tiny-chat", "messages": HI, "temperature": 5}, "temperature", "<= 2.0"),
        ({"model": "tiny-chat", "messages": HI, "max_tokens": 0}, "max_tokens", ">= 1"),
        ({"model": "tiny-chat", "messages": HI, "n": 100}, "n", "<= 16"),
        ({"model": "tiny-chat", "messages": HI, "top_p": -1}, "top_p", ">= 0.0"),
        ({"model": "tiny-chat", "messages": HI, "stop": 7}, "stop", "Expected"),
        (
            {"model": "tiny-chat", "messages": HI, "logit_bias": {"abc": 1}},
            "logit_bias",
            "token ids",
        ),
        (
            {"model": "tiny-chat", "messages": HI, "logit_bias": {"999999": 1}},
            "logit_bias",
            "vocabulary",
        ),
        ({"model": "tiny-chat", "messages": HI, "top_logprobs": 2}, "top_logprobs", "logprobs"),
        (
            {"model": "tiny-chat", "messages": HI, "response_format": {"type": "xml"}},
            "response_format.type",
            "xml",
        ),
        (
            {"model": "tiny-chat", "messages": HI, "response_format": {"type": "json_schema"}},
            "response_format.json_schema",
            "json_schema",
        ),
        (
            {"model": "tiny-chat", "messages": HI, "tool_choice": "required"},
            "tool_choice",
            "at least one tool",
        ),
        (
            {
                "model": "tiny-chat",
                "messages": HI,
                "tools": [{"type": "function", "function": {"name": "f"}}],
                "tool_choice": {"type": "function", "function": {"name": "g"}},
            },
            "tool_choice",
            "'g'",
        ),
        (
            {
                "model": "tiny-chat",
                "messages": [{"role": "user", "content": [{"type": "image_url"}]}],
            },
            "messages[0].content[0].type",
            "image_url",
        ),
        (
            {"model": "tiny-chat", "messages": HI, "reasoning_effort": "extreme"},
            "reasoning_effort",
            "none, minimal, low, medium, high",
        ),
        (
            {"model": "tiny-chat", "messages": HI, "chat_template_kwargs": ["enable_thinking"]},
            "chat_template_kwargs",
            "must be an object",
        ),
        (
            {"model": "tiny-chat", "messages": HI, "chat_template_kwargs": "x"},
            "chat_template_kwargs",
            "must be an object",
        ),
        (
            {"model": "tiny-chat", "messages": HI, "max_reasoning_tokens": -1},
            "max_reasoning_tokens",
            ">= 0",
        ),
        (
            {"model": "tiny-chat", "messages": HI, "max_reasoning_tokens": "many"},
            "max_reasoning_tokens",
            "integer",
        ),
        (
            {"model": "tiny-chat", "messages": HI, "parallel_tool_calls": "no"},
            "parallel_tool_calls",
            "Expected `bool",
        ),
        ({"messages": HI}, "model", "model is required"),
        ({"model": "minilm", "messages": HI}, "model", "cannot do chat"),
    ],
)
def test_bad_chat_requests_are_400_naming_the_param(http, body, param, needle):
    error = assert_envelope(http.post("/v1/chat/completions", json=body), 400, param)
    assert error["type"] == "invalid_request_error"
    assert needle in error["message"]


@pytest.mark.parametrize(
    ("route", "body", "param"),
    [
        ("completions", {"model": "tiny-chat"}, "prompt"),
        ("completions", {"model": "tiny-chat", "prompt": []}, "prompt"),
        ("completions", {"model": "tiny-chat", "prompt": [""]}, "prompt"),
        ("completions", {"model": "tiny-chat", "prompt": "x", "logprobs": 50}, "logprobs"),
        ("completions", {"model": "minilm", "prompt": "x"}, "model"),
        ("embeddings", {"model": "minilm"}, "input"),
        ("embeddings", {"model": "minilm", "input": ""}, "input[0]"),
        ("embeddings", {"model": "minilm", "input": [1, 2]}, "input[0]"),
        (
            "embeddings",
            {"model": "minilm", "input": "x", "encoding_format": "hex"},
            "encoding_format",
        ),
        ("embeddings", {"model": "minilm", "input": "x", "dimensions": 1000}, "dimensions"),
        ("embeddings", {"model": "tiny-chat", "input": "x"}, "model"),
        ("images/generations", {"model": "tiny-sd", "prompt": "x", "size": "huge"}, "size"),
        ("images/generations", {"model": "tiny-sd", "prompt": "x", "size": "30x30"}, "width"),
        ("images/generations", {"model": "tiny-sd", "prompt": "x", "n": 5}, "n"),
        ("images/generations", {"model": "tiny-sd", "prompt": "x", "size": "2048x2048"}, "width"),
        (
            "images/generations",
            {"model": "tiny-sd", "prompt": "x", "response_format": "gif"},
            "response_format",
        ),
        ("images/generations", {"model": "tiny-sd", "prompt": ""}, "prompt"),
        ("images/generations", {"model": "tiny-chat", "prompt": "x"}, "model"),
    ],
)
def test_bad_requests_on_other_routes_are_400(http, route, body, param):
    assert_envelope(http.post(f"/v1/{route}", json=body), 400, param)


@pytest.mark.parametrize("body", [b"", b"{oops", b"[1, 2]"])
def test_malformed_bodies_are_400(http, body):
    assert_envelope(http.post("/v1/chat/completions", content=body), 400, None)


def test_sdk_raises_bad_request_with_param_and_code(v1):
    with pytest.raises(openai.BadRequestError) as error:
        v1.chat.completions.create(model="minilm", messages=HI)
    assert (error.value.param, error.value.code) == ("model", "unsupported_capability")
    with pytest.raises(openai.BadRequestError) as error:
        v1.chat.completions.create(model="tiny-chat", messages=HI, temperature=3)
    assert error.value.param == "temperature"


def test_body_model_must_match_the_url_model(app):
    client = app.openai("/v2/models/tiny-chat/infer", api_key="x")
    with pytest.raises(openai.BadRequestError) as error:
        client.chat.completions.create(model="minilm", messages=HI)
    assert (error.value.param, error.value.code) == ("model", "model_mismatch")
    assert "'minilm'" in error.value.message and "'tiny-chat'" in error.value.message


def test_unknown_models_are_404_and_never_fall_back(app, v1):
    with pytest.raises(openai.NotFoundError) as error:
        v1.chat.completions.create(model="gpt-4o", messages=HI)
    assert (error.value.param, error.value.code) == ("model", "model_not_found")
    with pytest.raises(openai.NotFoundError):
        v1.models.retrieve("gpt-4o")
    seldon = app.openai("/v2/models/gpt-4o/infer", api_key="x")
    with pytest.raises(openai.NotFoundError):
        seldon.embeddings.create(model="gpt-4o", input="x")


def test_models_that_are_not_ready_are_503(v1):
    with pytest.raises(openai.InternalServerError) as error:
        v1.chat.completions.create(model="missing", messages=HI)
    assert error.value.status_code == 503
    assert error.value.code == "model_not_ready" and "no such file" in error.value.message


def test_unknown_openai_route_and_wrong_method_keep_the_envelope(http):
    assert_envelope(http.get("/v1/nothing"), 404, None)
    assert_envelope(http.put("/v1/chat/completions"), 405, None)
    assert_envelope(http.get("/v2/models/tiny-chat/infer/nothing"), 404, None)


def test_server_keeps_serving_after_bad_requests(http, v1):
    for body in (b"{", b"[]", b'{"model": 3}'):
        http.post("/v1/chat/completions", content=body)
    assert v1.chat.completions.create(model="tiny-chat", messages=HI, max_tokens=2).choices


GUARDED = """
[server]
cors_origins = ["http://playground.test"]

[[models]]
name = "tiny-chat"
runtime = "llama-cpp"
source = "tiny.gguf"
[models.options]
n_ctx = 512
"""


@pytest.fixture(scope="module")
def guarded(apps: Apps, tiny_dir: Path) -> Iterator[InProcessApp]:
    """An app with LOCALOIP_API_KEY set and one CORS origin allowed."""
    config = apps.config(GUARDED)
    (config.parent / "tiny.gguf").symlink_to(tiny_dir / "tiny.gguf")
    with apps.shared(config, env={"LOCALOIP_API_KEY": "s3cret"}) as running:
        yield running


@pytest.fixture
def guarded_http(guarded: InProcessApp) -> Iterator[httpx.Client]:
    with guarded.client() as client:
        yield client


def test_api_key_is_checked_on_every_api_route(guarded, guarded_http):
    wrong = guarded.openai(api_key="nope")
    with pytest.raises(openai.AuthenticationError) as error:
        wrong.models.list()
    assert error.value.code == "invalid_api_key"
    right = guarded.openai(api_key="s3cret")
    assert right.chat.completions.create(model="tiny-chat", messages=HI, max_tokens=2).choices
    oip = guarded_http.get("/v2/models/tiny-chat")
    assert (oip.status_code, list(oip.json())) == (401, ["error"])
    headers = {"Authorization": "Bearer s3cret"}
    assert guarded_http.get("/v2/models/tiny-chat", headers=headers).status_code == 200
    assert guarded_http.get("/v2/health/ready").json() == {"ready": True}


def test_cors_allows_only_configured_origins(guarded_http, http):
    preflight = {
        "Origin": "http://playground.test",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    allowed = guarded_http.options("/v1/chat/completions", headers=preflight)
    assert allowed.headers["access-control-allow-origin"] == "http://playground.test"
    other = guarded_http.options(
        "/v1/chat/completions", headers={**preflight, "Origin": "http://evil.test"}
    )
    assert other.headers.get("access-control-allow-origin") != "http://evil.test"
    plain = http.post(
        "/v1/embeddings",
        json={"model": "minilm", "input": "x"},
        headers={"Origin": "http://playground.test"},
    )
    assert "access-control-allow-origin" not in plain.headers


def test_streams_that_fail_before_the_first_token_get_a_status_code(v1):
    with pytest.raises(openai.BadRequestError) as error:
        v1.chat.completions.create(
            model="tiny-chat", messages=HI, stream=True, logit_bias={"999999": 5}
        )
    assert error.value.param == "logit_bias"
