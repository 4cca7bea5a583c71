"""The edge in process: what a hostile web page sends is refused in each route's shape before
any work, and every client still works, compressed bodies included (the wire itself, raw
requests, curl and tritonclient, is in e2e/test_edge_wire.py)."""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterator

import httpx
import ollama
import pytest
from support.configs import API_KEY

HI = [{"role": "user", "content": "hi"}]
CHAT = {"model": "tiny-chat", "messages": HI, "max_tokens": 2}
MESSAGE = CHAT  # Anthropic's /v1/messages body has the same three fields
ANTHROPIC_VERSION = {"anthropic-version": "2023-06-01"}
EMBED = {"model": "tiny-embed", "input": ["a cat", "a kitten"]}
FOREIGN = {"Host": "evil.example:9000"}
EVIL_PAGE = "http://evil.example"
SAFE = ("GET", "HEAD")
OIP_INFER = {
    "inputs": [{"name": "input", "shape": [2], "datatype": "BYTES", "data": ["a cat", "a kitten"]}]
}
OLLAMA_CHAT = {"model": "tiny-chat", "messages": HI, "stream": False, "options": {"num_predict": 2}}
OLLAMA_ROUTES = [
    ("POST", "/api/chat", OLLAMA_CHAT),
    ("POST", "/api/generate", {"model": "tiny-chat", "prompt": "hi"}),
    ("POST", "/api/embed", {"model": "tiny-embed", "input": "hi"}),
    ("POST", "/api/embeddings", {"model": "tiny-embed", "prompt": "hi"}),
    ("GET", "/api/tags", None),
    ("POST", "/api/show", {"model": "tiny-chat"}),
    ("GET", "/api/ps", None),
    ("GET", "/api/version", None),
    ("POST", "/api/pull", {"model": "tiny-chat"}),
    ("DELETE", "/api/delete", {"model": "tiny-chat"}),
]


def openai_error(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["code"] == code
    return error


def anthropic_error(response: httpx.Response, status: int, kind: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["type"] == "error" and set(body["error"]) == {"type", "message"}
    assert body["error"]["type"] == kind
    return body["error"]["message"]


def oip_error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["error"] and isinstance(body["error"], str)
    return body["error"]


ollama_error = oip_error  # Ollama's shape is OIP's: {"error": "<message>"}


# -- DNS rebinding: a foreign Host ------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/v1/models", None),
        ("POST", "/v1/chat/completions", CHAT),
        ("GET", "/v1/chat/completions", None),  # the stored conversations
        ("GET", "/v1/responses/resp_x", None),
        ("GET", "/openai/v1/models", None),
        ("POST", "/v2/models/tiny-chat/infer/chat/completions", CHAT),
        ("POST", "/tokenize", {"model": "tiny-chat", "prompt": "hi"}),
        ("POST", "/v1/audio/transcriptions", None),
        ("POST", "/v2/models/tiny-chat/infer/audio/translations", None),
    ],
)
def test_a_foreign_host_gets_403_on_openai_routes(http, method, path, body):
    response = http.request(method, path, json=body, headers=FOREIGN)
    message = openai_error(response, 403, "host_not_allowed")["message"]
    assert "evil.example:9000" in message and "allowed_hosts" in message


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/v2", None),
        ("GET", "/v2/health/ready", None),
        ("GET", "/v2/models/tiny-embed", None),
        ("POST", "/v2/models/tiny-embed/infer", OIP_INFER),
        ("POST", "/v2/models/tiny-chat/generate", {"text_input": "hi"}),
        ("POST", "/v2/repository/index", {}),
        ("POST", "/v2/repository/models/tiny-embed/unload", None),
        ("GET", "/metrics", None),
        ("GET", "/static/playground.css", None),
    ],
)
def test_a_foreign_host_gets_403_on_oip_routes_metrics_and_static_files(http, method, path, body):
    assert "allowed_hosts" in oip_error(http.request(method, path, json=body, headers=FOREIGN), 403)


@pytest.mark.parametrize(
    ("method", "path", "body", "headers"),
    [
        ("POST", "/v1/messages", MESSAGE, {}),
        ("POST", "/v1/messages/count_tokens", MESSAGE, {}),
        ("POST", "/anthropic/v1/messages", MESSAGE, {}),
        ("POST", "/anthropic/v1/messages/count_tokens", MESSAGE, {}),
        ("GET", "/anthropic/v1/models", None, {}),
        ("GET", "/anthropic/v1/models/tiny-chat", None, {}),
        ("GET", "/v1/models", None, ANTHROPIC_VERSION),
        ("GET", "/v1/models/tiny-chat", None, ANTHROPIC_VERSION),
    ],
)
def test_a_foreign_host_gets_403_on_anthropic_routes(http, method, path, body, headers):
    response = http.request(method, path, json=body, headers={**FOREIGN, **headers})
    assert "allowed_hosts" in anthropic_error(response, 403, "permission_error")


@pytest.mark.parametrize(("method", "path", "body"), OLLAMA_ROUTES)
def test_a_foreign_host_gets_403_on_ollama_routes(http, method, path, body):
    response = http.request(method, path, json=body, headers=FOREIGN)
    assert "allowed_hosts" in ollama_error(response, 403)
    assert http.head("/", headers=FOREIGN).status_code == 403


@pytest.mark.parametrize(("method", "path", "body"), [r for r in OLLAMA_ROUTES if r[0] not in SAFE])
def test_ollama_routes_refuse_foreign_pages_and_bodies_that_are_not_json(http, method, path, body):
    evil = http.request(method, path, json=body, headers={"Origin": EVIL_PAGE})
    assert "cors_origins" in ollama_error(evil, 403)
    text = {"Content-Type": "text/plain"}
    plain = http.request(method, path, content=json.dumps(body), headers=text)
    assert "application/json" in ollama_error(plain, 415)
    form = http.request(method, path, data={"model": "tiny-chat"})
    ollama_error(form, 415)
    assert http.get("/v2/models/tiny-chat/ready").status_code == 200  # nothing was done


@pytest.mark.parametrize("path", ["/", "/ui/status", "/ui/models", "/signin"])
def test_a_foreign_host_gets_403_on_the_playground(http, path):
    response = http.get(path, headers=FOREIGN)
    assert response.status_code == 403 and response.headers["content-type"].startswith("text/html")
    assert "allowed_hosts" in response.text


def test_a_refused_request_does_no_work(http):
    unload = http.post("/v2/repository/models/tiny-embed/unload", headers=FOREIGN)
    assert unload.status_code == 403
    assert http.get("/v2/models/tiny-embed/ready").status_code == 200


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "LOCALHOST", "localhost.", "[::1]", "[0:0:0:0:0:0:0:1]", "app.localhost"],
)
def test_loopback_hosts_in_any_form_are_answered(http, host):
    response = http.get("/v2/health/live", headers={"Host": f"{host}:9000"})
    assert response.json() == {"live": True}


# -- cross-site simple requests ---------------------------------------------------------------


def test_a_text_plain_post_from_a_foreign_page_is_refused(http):
    body = json.dumps(CHAT)
    headers = {"Content-Type": "text/plain", "Origin": EVIL_PAGE}
    response = http.post("/v1/chat/completions", content=body, headers=headers)
    assert "cors_origins" in openai_error(response, 403, "origin_not_allowed")["message"]


@pytest.mark.parametrize(
    "send",
    [
        {"content": json.dumps(CHAT), "headers": {"Content-Type": "text/plain;charset=UTF-8"}},
        {"data": {"model": "tiny-chat", "messages": "hi"}},
        {"files": {"file": ("a.json", json.dumps(CHAT).encode())}},
    ],
    ids=["text", "form", "multipart"],
)
def test_text_form_and_multipart_bodies_are_415_even_without_origin(http, send):
    response = http.post("/v1/chat/completions", **send)
    error = openai_error(response, 415, "unsupported_media_type")
    assert "application/json" in error["message"]
    seldon = http.post("/v2/models/tiny-chat/infer/chat/completions", **send)
    openai_error(seldon, 415, "unsupported_media_type")
    messages = http.post("/v1/messages", **send)
    assert "application/json" in anthropic_error(messages, 415, "invalid_request_error")
    oip = http.post("/v2/models/tiny-chat/generate", **send)
    assert "application/json" in oip_error(oip, 415)


@pytest.mark.parametrize(
    "send",
    [
        {"content": json.dumps(CHAT), "headers": {"Content-Type": "text/plain"}},
        {"data": {"model": "tiny-chat"}},
        {"files": {"file": ("a.json", b"{}")}},
    ],
    ids=["text", "form", "multipart"],
)
def test_every_body_from_a_foreign_page_is_refused(http, send):
    headers = {**send.pop("headers", {}), "Origin": EVIL_PAGE}
    response = http.post("/v1/chat/completions", headers=headers, **send)
    openai_error(response, 403, "origin_not_allowed")
    for path in ("/v1/messages", "/anthropic/v1/messages/count_tokens"):
        refused = http.post(path, headers=headers, **send)
        assert "cors_origins" in anthropic_error(refused, 403, "permission_error")
    unload = http.post("/v2/repository/models/tiny-embed/unload", headers={"Origin": EVIL_PAGE})
    assert "evil.example" in oip_error(unload, 403)
    assert http.get("/v2/models/tiny-embed/ready").status_code == 200


AUDIO_ROUTES = [
    "/v1/audio/transcriptions",
    "/v1/audio/translations",
    "/openai/v1/audio/transcriptions",
    "/v2/models/tiny-chat/infer/audio/transcriptions",
]


@pytest.mark.parametrize("path", AUDIO_ROUTES)
def test_an_upload_from_a_foreign_page_or_host_is_refused_on_the_audio_routes(http, path):
    """Multipart is what a cross-site page can send without a preflight: the routes that take
    it check the page's Origin and the Host like any other, before reading the form."""
    upload = {"data": {"model": "tiny-chat"}, "files": {"file": ("a.wav", b"RIFF0000WAVE")}}
    refused = http.post(path, headers={"Origin": EVIL_PAGE}, **upload)
    assert "cors_origins" in openai_error(refused, 403, "origin_not_allowed")["message"]
    rebound = http.post(path, headers=FOREIGN, **upload)
    openai_error(rebound, 403, "host_not_allowed")
    # the same upload from the server's own page or no page is read: the model cannot transcribe
    own = http.post(path, headers={"Origin": "http://127.0.0.1:9000"}, **upload)
    assert openai_error(own, 400, "unsupported_capability")["param"] == "model"
    other_bodies = http.post(path, data={"model": "tiny-chat"}, headers={"Origin": EVIL_PAGE})
    openai_error(other_bodies, 403, "origin_not_allowed")


@pytest.mark.parametrize("path", AUDIO_ROUTES[:2])
def test_only_multipart_reaches_the_audio_routes(http, path):
    for send in ({"json": {"model": "tiny-chat"}}, {"data": {"model": "tiny-chat"}}):
        error = openai_error(http.post(path, **send), 415, "unsupported_media_type")
        assert "multipart/form-data" in error["message"]


@pytest.mark.parametrize("path", AUDIO_ROUTES)
def test_the_audio_routes_need_the_api_key_where_one_is_set(keyed_app, path):
    upload = {"data": {"model": "tiny-chat"}, "files": {"file": ("a.wav", b"RIFF0000WAVE")}}
    with keyed_app.client() as http:
        refused = http.post(path, **upload)
        openai_error(refused, 401, "invalid_api_key")
        keyed = http.post(path, headers={"Authorization": f"Bearer {API_KEY}"}, **upload)
        assert keyed.json()["error"]["code"] == "unsupported_capability"


def test_a_playground_action_from_a_foreign_page_is_refused(http):
    headers = {"HX-Request": "true", "Origin": EVIL_PAGE}
    response = http.post("/ui/models/tiny-embed/unload", headers=headers)
    assert response.status_code == 403 and "cors_origins" in response.text
    assert http.get("/v2/models/tiny-embed/ready").status_code == 200


def test_a_preflight_from_an_unknown_origin_gets_no_grant(http):
    preflight = {
        "Origin": EVIL_PAGE,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    for path in ("/v1/chat/completions", "/v2/models/tiny-chat/infer", "/ui/chat"):
        response = http.options(path, headers=preflight)
        assert "access-control-allow-origin" not in response.headers
        assert "access-control-allow-headers" not in response.headers


# -- the normal clients, with the checks on ---------------------------------------------------


def test_json_with_a_charset_and_loopback_origins_are_fine(http, app):
    headers = {"Content-Type": "application/json; charset=utf-8", "Origin": app.url}
    response = http.post("/v1/embeddings", content=json.dumps(EMBED), headers=headers)
    assert response.status_code == 200 and len(response.json()["data"]) == 2
    other_port = {"Content-Type": "application/json", "Origin": "http://localhost:3000"}
    assert http.post("/v1/embeddings", json=EMBED, headers=other_port).status_code == 200


def test_the_openai_sdk_works(app):
    client = app.openai()
    assert client.chat.completions.create(model="tiny-chat", messages=HI, max_tokens=2).choices
    seldon = app.openai("/v2/models/tiny-embed/infer")
    assert len(seldon.embeddings.create(model="tiny-embed", input="x").data[0].embedding) == 64


def test_the_ollama_client_works_and_sends_the_key_where_one_is_set(app, keyed_app):
    assert app.ollama().chat(model="tiny-chat", messages=HI, options={"num_predict": 2}).done
    with pytest.raises(ollama.ResponseError) as error:
        keyed_app.ollama().list()
    assert error.value.status_code == 401
    keyed = keyed_app.ollama(headers={"Authorization": f"Bearer {API_KEY}"})
    assert keyed.chat(model="tiny-chat", messages=HI, options={"num_predict": 2}).done
    with keyed_app.client() as http:  # the liveness check carries no key
        assert http.head("/").status_code == 200
        assert http.get("/api/tags").status_code == 401


def test_ndjson_streams_are_not_gzipped(remote):
    body = {**OLLAMA_CHAT, "stream": True}
    with remote.stream(
        "POST", "/api/chat", json=body, headers={"Accept-Encoding": "gzip"}
    ) as lines:
        assert lines.headers["content-type"].startswith("application/x-ndjson")
        assert "content-encoding" not in lines.headers
        assert json.loads(list(lines.iter_lines())[-1])["done"] is True


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [("gzip", gzip.compress), ("deflate", zlib.compress), ("x-gzip", gzip.compress)],
)
def test_compressed_json_bodies_work_on_every_protocol_s_routes(http, encoding, compress):
    headers = {"Content-Encoding": encoding, "Content-Type": "application/json"}
    plain = http.post("/v1/embeddings", json=EMBED).json()["data"]
    body = compress(json.dumps(EMBED).encode())
    assert http.post("/v1/embeddings", content=body, headers=headers).json()["data"] == plain
    message = compress(json.dumps({**MESSAGE, "temperature": 0}).encode())
    counted = http.post("/v1/messages/count_tokens", content=message, headers=headers)
    assert counted.json()["input_tokens"] > 0
    generated = http.post(
        "/v2/models/tiny-chat/generate",
        content=compress(b'{"text_input": "hi", "parameters": {"max_tokens": 2}}'),
        headers=headers,
    )
    assert generated.status_code == 200 and "text_output" in generated.json()


def test_a_zip_bomb_is_413_in_each_route_s_shape(http):
    # 1 MiB is this server's max_body_bytes; 8 MiB of spaces inside valid JSON is 8 KiB gzipped.
    bomb = gzip.compress(b'{"model": "tiny-embed", "input": "x"' + b" " * (8 << 20) + b"}")
    assert len(bomb) < 64 * 1024
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    response = http.post("/v1/embeddings", content=bomb, headers=headers)
    assert "once decoded" in openai_error(response, 413, "body_too_large")["message"]
    assert "once decoded" in oip_error(
        http.post("/v2/models/tiny-embed/infer", content=bomb, headers=headers), 413
    )
    messages = http.post("/v1/messages", content=bomb, headers=headers)
    assert "once decoded" in anthropic_error(messages, 413, "request_too_large")


def test_an_unknown_or_broken_encoding_is_refused_in_each_route_s_shape(http):
    headers = {"Content-Encoding": "br", "Content-Type": "application/json"}
    body = json.dumps(EMBED).encode()
    response = http.post("/v1/embeddings", content=body, headers=headers)
    assert "'br'" in openai_error(response, 415, "unsupported_content_encoding")["message"]
    assert "gzip" in oip_error(http.post("/v2/models/x/infer", content=body, headers=headers), 415)
    broken = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    response = http.post("/v1/embeddings", content=body, headers=broken)
    assert response.status_code == 400 and "not valid gzip" in response.json()["error"]["message"]


REMOTE = ("192.0.2.7", 50000)  # a documentation address (RFC 5737): a client beyond loopback


@pytest.fixture
def remote(app) -> Iterator[httpx.Client]:
    """A client on `app` from an address beyond loopback, whose gzip replies are compressed."""
    with app.client(peer=REMOTE) as client:
        yield client


def test_loopback_clients_get_the_same_bytes_uncompressed_whatever_they_accept(http, remote):
    body = EMBED
    plain = http.post("/v1/embeddings", json=body, headers={"Accept-Encoding": "identity"})
    local = http.post("/v1/embeddings", json=body, headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in local.headers
    assert local.content == plain.content and len(plain.content) > 1400
    far = remote.post("/v1/embeddings", json=body, headers={"Accept-Encoding": "gzip"})
    assert far.headers["content-encoding"] == "gzip"
    assert far.content == plain.content  # httpx inflates it: the same bytes


def test_small_replies_are_not_gzipped(remote):
    reply = remote.get("/v2/health/ready", headers={"Accept-Encoding": "gzip"})
    assert reply.status_code == 200 and "content-encoding" not in reply.headers


def test_responses_beyond_loopback_are_gzipped_when_accepted_but_event_streams_are_not(
    remote,
):
    http = remote
    models = http.get("/v1/models", headers={"Accept-Encoding": "gzip"})
    assert models.headers["content-encoding"] == "gzip" and models.json()["data"]
    assert "content-encoding" not in http.get("/v1/models", headers={"Accept-Encoding": ""}).headers
    body = {**CHAT, "stream": True, "max_tokens": 4}
    with http.stream(
        "POST", "/v1/chat/completions", json=body, headers={"Accept-Encoding": "gzip"}
    ) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert "content-encoding" not in stream.headers
        assert any(line.startswith("data: ") for line in stream.iter_lines())
    with http.stream(
        "POST", "/v1/messages", json=body, headers={"Accept-Encoding": "gzip"}
    ) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        assert "content-encoding" not in stream.headers
        assert "event: message_start" in list(stream.iter_lines())
