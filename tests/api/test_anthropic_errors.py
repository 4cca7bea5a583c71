"""Anthropic's error shape: every bad input to /v1/messages and its token count is a 4xx in
`{"type": "error", "error": {"type", "message"}}` that names what is wrong, never a 500; the
API key is checked as on every route, sent as `x-api-key` or a bearer key."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import httpx
import pytest
from support.configs import API_KEY, model_toml, tiny_chat, tiny_embed
from support.inprocess import Apps, InProcessApp
from support.tiny_models import build_tiny_gguf

HI = [{"role": "user", "content": "hi"}]
MESSAGE = {"model": "tiny-chat", "max_tokens": 4, "messages": HI}
VERSION = {"anthropic-version": "2023-06-01"}


@pytest.fixture(scope="module")
def app(apps: Apps, tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessApp]:
    """The tiny chat model, the same GGUF as an embedding model, and one that cannot load."""
    folder = tmp_path_factory.mktemp("anthropic-errors")
    build_tiny_gguf(folder / "tiny.gguf")
    config = (
        tiny_chat(folder)
        + tiny_embed(folder)
        + model_toml("missing", "llama-cpp", "no-such-model.gguf")
    )
    with apps.shared(config) as running:
        yield running


@pytest.fixture
def http(app: InProcessApp) -> Iterator[httpx.Client]:
    with app.client() as client:
        yield client


def anthropic_error(response: httpx.Response, status: int, kind: str) -> str:
    """The error's message, once the response is Anthropic's error shape with this status."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"type", "error"} and body["type"] == "error"
    assert set(body["error"]) == {"type", "message"} and body["error"]["type"] == kind
    return body["error"]["message"]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"model": "tiny-chat", "messages": HI}, "max_tokens"),
        ({**MESSAGE, "max_tokens": 0}, "max_tokens"),
        ({"model": "tiny-chat", "max_tokens": 4}, "messages"),
        ({**MESSAGE, "messages": []}, "messages"),
        ({**MESSAGE, "messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
        (
            {**MESSAGE, "messages": [{"role": "user", "content": [{"type": "video", "url": "x"}]}]},
            "'video'",
        ),
        (
            {
                **MESSAGE,
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "tool_result", "tool_use_id": "toolu_9", "content": "x"}
                        ],
                    }
                ],
            },
            "'toolu_9'",
        ),
        (
            {
                **MESSAGE,
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "image",
                                "source": {
                                    "type": "base64",
                                    "media_type": "image/png",
                                    "data": "AA==",
                                },
                            }
                        ],
                    }
                ],
            },
            "messages[0].content[0]: this model reads no images",
        ),
        (
            {
                **MESSAGE,
                "messages": [
                    {
                        "role": "system",
                        "content": [{"type": "image", "source": {"type": "url", "url": "x"}}],
                    }
                ],
            },
            "messages[0].content[0]: image blocks cannot stand",
        ),
        (
            {
                **MESSAGE,
                "messages": [{"role": "user", "content": [{"type": "image", "source": {}}]}],
            },
            "messages[0].content[0].source",
        ),
        ({**MESSAGE, "temperature": 1.5}, "temperature"),
        ({**MESSAGE, "top_k": -1}, "top_k"),
        ({**MESSAGE, "stop_sequences": "\n"}, "stop_sequences"),
        ({**MESSAGE, "thinking": {"type": "enabled"}}, "budget_tokens"),
        ({**MESSAGE, "thinking": {"type": "sometimes"}}, "'sometimes'"),
        ({**MESSAGE, "tool_choice": {"type": "any"}}, "at least one tool"),
        (
            {
                **MESSAGE,
                "tools": [{"name": "f", "input_schema": {}}],
                "tool_choice": {"type": "tool", "name": "g"},
            },
            "'g'",
        ),
        (
            {**MESSAGE, "tools": [{"type": "web_search_20250305", "name": "web_search"}]},
            "server tool",
        ),
        ({**MESSAGE, "messages": [{"role": "assistant", "content": "Once"}]}, "messages[0]"),
    ],
)
def test_bad_messages_are_400s_that_say_what_is_wrong(http, body, needle):
    message = anthropic_error(http.post("/v1/messages", json=body), 400, "invalid_request_error")
    assert needle in message


@pytest.mark.parametrize(
    "content", [b"{", b"not json", b"", b"[]"], ids=["cut", "text", "empty", "array"]
)
def test_a_body_that_is_not_a_json_object_is_a_400(http, content):
    response = http.post(
        "/v1/messages", content=content, headers={"content-type": "application/json"}
    )
    anthropic_error(response, 400, "invalid_request_error")


def test_bad_token_counts_are_400s_too(http):
    response = http.post("/v1/messages/count_tokens", json={"model": "tiny-chat"})
    assert "messages" in anthropic_error(response, 400, "invalid_request_error")


def test_an_unknown_model_is_404_and_never_falls_back(app, http):
    for path in ("/v1/messages", "/v1/messages/count_tokens", "/anthropic/v1/messages"):
        message = anthropic_error(
            http.post(path, json={**MESSAGE, "model": "nope"}), 404, "not_found_error"
        )
        assert "'nope'" in message
    anthropic_error(http.get("/v1/models/nope", headers=VERSION), 404, "not_found_error")
    anthropic_error(http.get("/anthropic/v1/models/nope"), 404, "not_found_error")
    with pytest.raises(anthropic.NotFoundError):
        app.anthropic().models.retrieve("nope")


def test_a_model_that_cannot_chat_or_is_not_ready_says_so(http):
    embed = http.post("/v1/messages", json={**MESSAGE, "model": "tiny-embed"})
    assert "chat" in anthropic_error(embed, 400, "invalid_request_error")
    missing = http.post("/v1/messages", json={**MESSAGE, "model": "missing"})
    anthropic_error(missing, 503, "overloaded_error")


def test_a_stream_that_fails_before_its_first_token_gets_a_status(http):
    long = [{"role": "user", "content": "word " * 2000}]
    response = http.post("/v1/messages", json={**MESSAGE, "messages": long, "stream": True})
    anthropic_error(response, 400, "invalid_request_error")


def test_an_unknown_path_or_method_answers_in_the_shape_of_its_protocol(http):
    anthropic_error(http.get("/v1/messages"), 405, "invalid_request_error")
    anthropic_error(http.get("/anthropic/v1/nowhere"), 404, "not_found_error")
    anthropic_error(http.get("/v1/nowhere", headers=VERSION), 404, "not_found_error")
    assert set(http.get("/v1/nowhere").json()["error"]) == {"message", "type", "param", "code"}


def test_the_sdk_raises_its_error_classes(app):
    client = app.anthropic()
    with pytest.raises(anthropic.BadRequestError) as error:
        client.messages.create(model="tiny-chat", max_tokens=4, messages=[])
    assert error.value.body["error"]["type"] == "invalid_request_error"
    with pytest.raises(anthropic.InternalServerError) as unavailable:
        client.messages.create(model="missing", max_tokens=4, messages=HI)
    assert unavailable.value.status_code == 503


# -- the API key ------------------------------------------------------------------------------


def test_the_key_is_taken_as_x_api_key_or_a_bearer_key(keyed_app: InProcessApp):
    with keyed_app.client() as http:
        for headers in ({"x-api-key": API_KEY}, {"Authorization": f"Bearer {API_KEY}"}):
            assert http.post("/v1/messages", json=MESSAGE, headers=headers).status_code == 200
            counted = http.post("/v1/messages/count_tokens", json=MESSAGE, headers=headers)
            assert counted.json()["input_tokens"] > 0
        for headers in ({}, {"x-api-key": "nope"}, {"Authorization": "Bearer nope"}):
            for method, path in (
                ("POST", "/v1/messages"),
                ("POST", "/anthropic/v1/messages/count_tokens"),
                ("GET", "/anthropic/v1/models"),
            ):
                response = http.request(method, path, json=MESSAGE, headers=headers)
                assert "x-api-key" in anthropic_error(response, 401, "authentication_error")
            models = http.get("/v1/models", headers={**headers, **VERSION})
            anthropic_error(models, 401, "authentication_error")
        # OpenAI's clients on the same path keep OpenAI's shape.
        assert http.get("/v1/models").json()["error"]["code"] == "invalid_api_key"


def test_the_sdk_signs_in_with_its_api_key(keyed_app: InProcessApp):
    assert keyed_app.anthropic(api_key=API_KEY).messages.create(**MESSAGE).content is not None
    with pytest.raises(anthropic.AuthenticationError):
        keyed_app.anthropic(api_key="nope").messages.create(**MESSAGE)


@pytest.mark.parametrize("limit", ["0", "1001", "ten", "²", "-1"])
def test_a_model_page_limit_that_is_no_count_from_1_to_1000_is_a_400(http, limit):
    response = http.get("/anthropic/v1/models", params={"limit": limit})
    assert "limit" in anthropic_error(response, 400, "invalid_request_error")
