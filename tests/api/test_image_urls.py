"""Images named by URL, with `[server] image_urls = true`: fetched by the server from a real
local HTTP server started here (never the internet) for OpenAI chat, the Responses API and
Anthropic's url sources, within the size, type, time and redirect limits; each failure a 400 in
the protocol's shape, with the server still serving."""

from __future__ import annotations

import base64
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import anthropic
import pytest
from support.configs import model_toml
from support.inprocess import Apps, InProcessApp
from support.tiny_vision import IMAGE_TOKENS, mtmd_available, png_bytes

pytestmark = pytest.mark.skipif(not mtmd_available(), reason="llama-cpp-python without mtmd")

RED = png_bytes((200, 0, 0))
MAX_BYTES = 4096
SLOW_SECONDS = 5  # past the app's image_url_timeout of 1 s


class Pictures(BaseHTTPRequestHandler):
    """/red.png; /huge (a PNG type, and more bytes than MAX_BYTES with no Content-Length);
    /declared (a Content-Length past MAX_BYTES); /page (text/html); /slow (never finishes in
    time); /missing (404); /loop (redirects to itself); /hop (one redirect to /red.png)."""

    def log_message(self, *_: object) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        if self.path == "/red.png":
            self.answer(200, "image/png", RED)
        elif self.path == "/page":
            self.answer(200, "text/html; charset=utf-8", b"<html>a cat</html>")
        elif self.path == "/huge":
            self.send_response(200)
            self.send_header("content-type", "image/png")
            self.end_headers()
            try:
                for _ in range(64):
                    self.wfile.write(b"\0" * 1024)
            except OSError:  # the server stops reading past its limit
                pass
        elif self.path == "/declared":
            self.send_response(200)
            self.send_header("content-type", "image/png")
            self.send_header("content-length", str(10 * MAX_BYTES))
            self.end_headers()
        elif self.path == "/slow":
            self.send_response(200)
            self.send_header("content-type", "image/png")
            self.end_headers()
            time.sleep(SLOW_SECONDS)
        elif self.path in ("/loop", "/hop"):
            self.send_response(302)
            self.send_header("location", "/loop" if self.path == "/loop" else "/red.png")
            self.end_headers()
        else:
            self.answer(404, "text/plain", b"no such picture")

    def answer(self, status: int, kind: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("content-type", kind)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def pictures() -> Iterator[str]:
    """The base URL of a local HTTP server serving Pictures."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Pictures)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def fetching_app(apps: Apps, vision_pair: tuple[Path, Path]) -> Iterator[InProcessApp]:
    """The vision model `eyes` behind a server that fetches image URLs."""
    model, mmproj = vision_pair
    config = (
        f"[server]\nimage_urls = true\nimage_url_max_bytes = {MAX_BYTES}\n"
        "image_url_timeout = 1\n\n"
        + model_toml("eyes", "llama-cpp", str(model), n_ctx=1024, threads=1, mmproj=str(mmproj))
    )
    with apps.shared(config) as running:
        yield running


def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def chat(app: InProcessApp, url: str):
    parts = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": url}},
    ]
    body = {
        "model": "eyes",
        "messages": [{"role": "user", "content": parts}],
        "max_tokens": 8,
        "temperature": 0,
    }
    return app.client().post("/v1/chat/completions", json=body)


def chat_answer(app: InProcessApp, url: str) -> tuple[int, str]:
    reply = chat(app, url)
    assert reply.status_code == 200, reply.text
    return reply.json()["usage"]["prompt_tokens"], reply.json()["choices"][0]["message"]["content"]


DATA_URL = "data:image/png;base64," + base64.b64encode(RED).decode()


def test_a_fetched_image_reads_as_the_same_image_inline(fetching_app, pictures):
    inline = chat_answer(fetching_app, DATA_URL)
    assert chat_answer(fetching_app, f"{pictures}/red.png") == inline
    assert chat_answer(fetching_app, f"{pictures}/hop") == inline  # one redirect is followed


def test_the_responses_api_fetches_an_input_image_url(fetching_app, pictures):
    def tokens(*parts: dict) -> int:
        content = [{"type": "input_text", "text": "What is this?"}, *parts]
        body = {"model": "eyes", "input": [{"role": "user", "content": content}]}
        reply = fetching_app.client().post("/v1/responses", json={**body, "max_output_tokens": 8})
        assert reply.status_code == 200, reply.text
        return reply.json()["usage"]["input_tokens"]

    image = {"type": "input_image", "image_url": f"{pictures}/red.png"}
    assert tokens(image) == tokens() + IMAGE_TOKENS


def anthropic_message(app: InProcessApp, url: str):
    block = {"type": "image", "source": {"type": "url", "url": url}}
    content = [{"type": "text", "text": "What is this?"}, block]
    return app.anthropic().messages.create(
        model="eyes",
        max_tokens=8,
        messages=[{"role": "user", "content": content}],
        extra_body={"temperature": 0},
    )


def test_anthropic_url_sources_are_fetched(fetching_app, pictures):
    reply = anthropic_message(fetching_app, f"{pictures}/red.png")
    tokens = reply.usage.input_tokens + (reply.usage.cache_read_input_tokens or 0)
    assert (tokens, reply.content[0].text) == chat_answer(fetching_app, DATA_URL)


FAILURES = [
    ("/huge", "over image_url_max_bytes (4096 bytes)"),
    ("/declared", "over image_url_max_bytes"),
    ("/page", "sent text/html, not an image/* type"),
    ("/slow", "did not answer within 1 s"),
    ("/missing", "answered 404"),
    ("/loop", "redirected more than 3 times"),
]
IDS = ["too-big", "too-big-declared", "not-an-image", "timeout", "404", "redirect-loop"]


@pytest.mark.parametrize(("path", "words"), FAILURES, ids=IDS)
def test_openai_chat_refuses_what_cannot_be_fetched(fetching_app, pictures, path, words):
    refused = chat(fetching_app, pictures + path)
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert (error["param"], error["type"]) == ("messages[0].content[1]", "invalid_request_error")
    assert words in error["message"], error
    assert chat_answer(fetching_app, DATA_URL)[0] > IMAGE_TOKENS  # still serving


@pytest.mark.parametrize(("path", "words"), FAILURES, ids=IDS)
def test_anthropic_refuses_what_cannot_be_fetched_in_its_shape(fetching_app, pictures, path, words):
    with pytest.raises(anthropic.BadRequestError) as caught:
        anthropic_message(fetching_app, pictures + path)
    error = caught.value.body["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith("messages[0].content[1]: ") and words in error["message"]


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("file:///etc/passwd", "only http and https image URLs are fetched, not file:"),
        ("ftp://127.0.0.1/a.png", "not ftp:"),
        ("http://127.0.0.1:{port}/a.png", "could not be fetched"),
    ],
    ids=["file", "ftp", "unreachable"],
)
def test_other_schemes_and_unreachable_hosts_are_400s(fetching_app, url, words):
    url = url.format(port=closed_port())
    refused = chat(fetching_app, url)
    assert refused.status_code == 400, refused.text
    assert words in refused.json()["error"]["message"]
    content = [{"type": "input_text", "text": "hi"}, {"type": "input_image", "image_url": url}]
    body = {"model": "eyes", "input": [{"role": "user", "content": content}]}
    responses = fetching_app.client().post("/v1/responses", json=body)
    assert responses.status_code == 400 and words in responses.json()["error"]["message"]
