"""The `openai` remote runtime: a front server forwarding to a real upstream server, on loopback."""

from __future__ import annotations

import base64
import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import numpy as np
import pytest
from openai import APIError, BadRequestError, InternalServerError, OpenAI
from PIL import Image
from support.configs import MINILM, scripted_chats, tiny_chat, tiny_sd
from support.family import ANSWER, REASONING
from support.servers import Server, Servers, free_port

KEY_ENV = "LOCALOIP_TEST_UPSTREAM_KEY"
KEY = "upstream-secret"

FRONT = """
[[models]]
name = "remote-chat"
runtime = "openai"
source = "{upstream}"
[models.options]
model = "tiny-chat"
api_key_env = "{key_env}"

[[models]]
name = "remote-embed"
runtime = "openai"
source = "{upstream}"
[models.options]
model = "minilm"
api_key_env = "{key_env}"
capabilities = ["embed"]

[[models]]
name = "remote-sd"
runtime = "openai"
source = "{upstream}"
[models.options]
model = "tiny-sd"
api_key_env = "{key_env}"
capabilities = ["image"]

[[models]]
name = "remote-thinking"
runtime = "openai"
source = "{upstream}"
[models.options]
model = "qwen3-thinking"
api_key_env = "{key_env}"

[[models]]
name = "remote-down"
runtime = "openai"
source = "{down}"
[models.options]
model = "tiny-chat"

[[models]]
name = "remote-gone"
runtime = "openai"
source = "{gone}"
[models.options]
model = "gone"
"""

HELLO = [{"role": "user", "content": "hello"}]
GREEDY = {"max_tokens": 8, "temperature": 0}


class ModelCard(BaseHTTPRequestHandler):
    """A stub upstream: GET /v1/models/gone lets the front load it; a streamed chat sends
    one token and then an error frame, as a server that fails mid-generation does."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["content-length"]))
        chunk = {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "gone",
            "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": None}],
        }
        error = {
            "error": {
                "message": "the GPU caught fire",
                "type": "server_error",
                "param": None,
                "code": "gpu_on_fire",
            }
        }
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.end_headers()
        self.wfile.write(f"data: {json.dumps(chunk)}\n\ndata: {json.dumps(error)}\n\n".encode())

    def do_GET(self) -> None:
        body = json.dumps({"id": "gone", "object": "model"}).encode()
        self.send_response(200 if self.path == "/v1/models/gone" else 404)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        """Quiet."""


@pytest.fixture(scope="module")
def vanishing() -> Iterator[ThreadingHTTPServer]:
    """A loopback upstream that a test shuts down after the front has loaded its model."""
    stub = ThreadingHTTPServer(("127.0.0.1", 0), ModelCard)
    thread = threading.Thread(target=stub.serve_forever, daemon=True)
    thread.start()
    yield stub
    stub.shutdown()
    stub.server_close()
    thread.join()


@pytest.fixture(scope="module")
def pair(
    servers: Servers, tiny_dir: Path, scripted_dir: Path, vanishing: ThreadingHTTPServer
) -> Iterator[dict[str, Server]]:
    """The upstream serving tiny models (and a scripted reasoning model) behind a key, and the
    front forwarding to it."""
    upstream_config = (
        f'[server]\napi_key_env = "{KEY_ENV}"\n\n'
        + tiny_chat(tiny_dir)
        + scripted_chats(scripted_dir, ["qwen3-thinking"])
    )
    env = {KEY_ENV: KEY}
    with servers.shared(upstream_config + MINILM + tiny_sd(tiny_dir), env=env) as upstream:
        front_config = FRONT.format(
            key_env=KEY_ENV,
            upstream=f"{upstream.url}/v1",
            down=f"http://127.0.0.1:{free_port()}/v1",
            gone=f"http://127.0.0.1:{vanishing.server_address[1]}/v1",
        )
        with servers.alone(front_config, env=env) as front:
            yield {"upstream": upstream, "front": front}


@pytest.fixture(scope="module")
def upstream(pair: dict[str, Server]) -> OpenAI:
    return OpenAI(base_url=pair["upstream"].url + "/v1", api_key=KEY, max_retries=0)


@pytest.fixture(scope="module")
def front(pair: dict[str, Server]) -> OpenAI:
    return OpenAI(base_url=pair["front"].url + "/v1", api_key="x", max_retries=0)


def test_chat_equals_the_upstream_answer(upstream: OpenAI, front: OpenAI) -> None:
    direct = upstream.chat.completions.create(model="tiny-chat", messages=HELLO, **GREEDY)
    reply = front.chat.completions.create(model="remote-chat", messages=HELLO, **GREEDY)
    assert reply.model == "remote-chat"
    assert reply.choices[0].message.content == direct.choices[0].message.content != ""
    assert reply.choices[0].finish_reason == direct.choices[0].finish_reason == "length"
    assert reply.usage.prompt_tokens == direct.usage.prompt_tokens
    assert reply.usage.completion_tokens == direct.usage.completion_tokens == 8


def test_streamed_chat_adds_up_and_ends_with_usage(upstream: OpenAI, front: OpenAI) -> None:
    direct = upstream.chat.completions.create(model="tiny-chat", messages=HELLO, **GREEDY)
    chunks = list(
        front.chat.completions.create(
            model="remote-chat",
            messages=HELLO,
            stream=True,
            stream_options={"include_usage": True},
            **GREEDY,
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == direct.choices[0].message.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].choices == []
    assert chunks[-1].usage.prompt_tokens == direct.usage.prompt_tokens
    assert chunks[-1].usage.completion_tokens == 8


def test_reasoning_comes_back_apart_whole_and_streamed(upstream: OpenAI, front: OpenAI) -> None:
    direct = upstream.chat.completions.create(model="qwen3-thinking", messages=HELLO, temperature=0)
    reply = front.chat.completions.create(model="remote-thinking", messages=HELLO, temperature=0)
    for answer in (direct, reply):
        message = answer.choices[0].message
        assert (message.model_extra["reasoning_content"], message.content) == (REASONING, ANSWER)
    details = reply.usage.completion_tokens_details
    assert details.reasoning_tokens == direct.usage.completion_tokens_details.reasoning_tokens > 0
    chunks = list(
        front.chat.completions.create(
            model="remote-thinking",
            messages=HELLO,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    thought = "".join((d.model_extra or {}).get("reasoning_content") or "" for d in deltas)
    assert (thought, "".join(d.content or "" for d in deltas)) == (REASONING, ANSWER)
    assert chunks[-1].usage.completion_tokens_details.reasoning_tokens == details.reasoning_tokens


def test_the_reasoning_controls_and_the_historys_reasoning_are_forwarded(
    upstream: OpenAI, front: OpenAI
) -> None:
    """The upstream's prompt is the same as a direct request's: the effort reaches its template
    (Qwen3's enable_thinking), and so does an earlier turn's reasoning_content."""
    earlier = {"role": "assistant", "content": "Hi!", "reasoning_content": "A greeting."}
    history = [*HELLO, earlier, {"role": "user", "content": "again"}]
    asked = {"messages": history, "temperature": 0, "max_tokens": 1}
    for effort in ("none", "high"):
        direct = upstream.chat.completions.create(
            model="qwen3-thinking", reasoning_effort=effort, **asked
        )
        reply = front.chat.completions.create(
            model="remote-thinking", reasoning_effort=effort, **asked
        )
        assert reply.usage.prompt_tokens == direct.usage.prompt_tokens
    off = front.chat.completions.create(model="remote-thinking", reasoning_effort="none", **asked)
    on = front.chat.completions.create(model="remote-thinking", reasoning_effort="high", **asked)
    assert off.usage.prompt_tokens != on.usage.prompt_tokens


def test_a_continued_reply_is_forwarded(upstream: OpenAI, front: OpenAI) -> None:
    settings = {
        "messages": [*HELLO, {"role": "assistant", "content": "Wel"}],
        "extra_body": {"continue_final_message": True},
        **GREEDY,
    }
    direct = upstream.chat.completions.create(model="tiny-chat", **settings)
    reply = front.chat.completions.create(model="remote-chat", **settings)
    assert reply.choices[0].message.content == direct.choices[0].message.content != ""
    whole = upstream.chat.completions.create(model="tiny-chat", messages=HELLO, **GREEDY)
    assert reply.choices[0].message.content != whole.choices[0].message.content


def test_logprobs_are_forwarded(upstream: OpenAI, front: OpenAI) -> None:
    settings = {"messages": HELLO, "logprobs": True, "top_logprobs": 2, **GREEDY}
    direct = upstream.chat.completions.create(model="tiny-chat", **settings)
    reply = front.chat.completions.create(model="remote-chat", **settings)

    def tokens(content) -> list:
        return [
            (t.token, t.logprob, [(a.token, a.logprob) for a in t.top_logprobs]) for t in content
        ]

    assert len(reply.choices[0].logprobs.content) == 8
    assert tokens(reply.choices[0].logprobs.content) == tokens(direct.choices[0].logprobs.content)


def test_forced_tool_call_comes_back(upstream: OpenAI, front: OpenAI) -> None:
    tool = {
        "type": "function",
        "function": {
            "name": "get_time",
            "parameters": {
                "type": "object",
                "properties": {"zone": {"enum": ["UTC", "CET"]}},
                "required": ["zone"],
                "additionalProperties": False,
            },
        },
    }
    settings = {
        "messages": HELLO,
        "tools": [tool],
        "tool_choice": {"type": "function", "function": {"name": "get_time"}},
        "max_tokens": 80,
        "temperature": 0,
    }
    direct = upstream.chat.completions.create(model="tiny-chat", **settings)
    reply = front.chat.completions.create(model="remote-chat", **settings)
    assert reply.choices[0].finish_reason == "tool_calls"
    (call,) = reply.choices[0].message.tool_calls
    (expected,) = direct.choices[0].message.tool_calls
    assert (call.function.name, call.function.arguments) == (
        expected.function.name,
        expected.function.arguments,
    )


def test_completions_equal_the_upstream_answer(upstream: OpenAI, front: OpenAI) -> None:
    direct = upstream.completions.create(model="tiny-chat", prompt="Once upon", **GREEDY)
    reply = front.completions.create(model="remote-chat", prompt="Once upon", **GREEDY)
    assert reply.choices[0].text == direct.choices[0].text != ""
    assert reply.usage.completion_tokens == direct.usage.completion_tokens
    chunks = list(
        front.completions.create(
            model="remote-chat",
            prompt="Once upon",
            stream=True,
            stream_options={"include_usage": True},
            **GREEDY,
        )
    )
    assert "".join(c.choices[0].text for c in chunks if c.choices) == direct.choices[0].text
    assert chunks[-1].usage.completion_tokens == 8


def test_embeddings_equal_the_upstream_vectors(upstream: OpenAI, front: OpenAI) -> None:
    texts = ["a small test", "another sentence"]
    direct = upstream.embeddings.create(model="minilm", input=texts)
    reply = front.embeddings.create(model="remote-embed", input=texts)
    got = np.array([d.embedding for d in reply.data])
    want = np.array([d.embedding for d in direct.data])
    assert got.shape == want.shape == (2, 384)
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert reply.usage.prompt_tokens == direct.usage.prompt_tokens


def test_images_come_back_as_png(upstream: OpenAI, front: OpenAI) -> None:
    settings = {"prompt": "a red square", "size": "64x64", "response_format": "b64_json"}
    extra = {"steps": 2, "seed": 7}
    direct = upstream.images.generate(model="tiny-sd", extra_body=extra, **settings)
    reply = front.images.generate(model="remote-sd", extra_body=extra, **settings)
    png = base64.b64decode(reply.data[0].b64_json)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(png))
    assert image.size == (64, 64)
    want = Image.open(io.BytesIO(base64.b64decode(direct.data[0].b64_json)))
    assert np.array_equal(np.asarray(image), np.asarray(want))


def test_upstream_client_error_keeps_its_status_and_param(upstream: OpenAI, front: OpenAI) -> None:
    bad = {"messages": HELLO, "logit_bias": {"99999": 1}, **GREEDY}
    with pytest.raises(BadRequestError) as direct:
        upstream.chat.completions.create(model="tiny-chat", **bad)
    with pytest.raises(BadRequestError) as forwarded:
        front.chat.completions.create(model="remote-chat", **bad)
    assert forwarded.value.param == direct.value.param == "logit_bias"
    assert forwarded.value.message == direct.value.message


def test_upstream_rejecting_a_stream_gives_its_status(front: OpenAI) -> None:
    """The upstream refuses before its first token; the front answers with that status."""
    with pytest.raises(BadRequestError) as error:
        front.chat.completions.create(
            model="remote-chat", messages=HELLO, logit_bias={"99999": 1}, stream=True, **GREEDY
        )
    assert error.value.param == "logit_bias"
    assert "vocabulary" in error.value.message


def test_upstream_error_frame_mid_stream_is_forwarded(front: OpenAI) -> None:
    """Runs before the stub upstream is shut down by the next test."""
    stream = front.chat.completions.create(model="remote-gone", messages=HELLO, stream=True)
    texts = []
    with pytest.raises(APIError) as error:
        for chunk in stream:
            texts.append(chunk.choices[0].delta.content)
    assert texts == ["Hi"]
    assert "the GPU caught fire" in error.value.message


def test_upstream_gone_after_load_is_a_502_then_unavailable(
    vanishing: ThreadingHTTPServer, front: OpenAI
) -> None:
    assert front.models.retrieve("remote-gone").model_extra["state"] == "READY"
    vanishing.shutdown()
    vanishing.server_close()
    with pytest.raises(InternalServerError) as error:
        front.chat.completions.create(model="remote-gone", messages=HELLO, **GREEDY)
    assert error.value.status_code == 502
    assert "unreachable" in error.value.message
    assert f"127.0.0.1:{vanishing.server_address[1]}" in error.value.message
    card = front.models.retrieve("remote-gone").model_extra
    assert card["state"] == "UNAVAILABLE" and "unreachable" in card["reason"]
    with pytest.raises(InternalServerError) as error:
        front.chat.completions.create(model="remote-gone", messages=HELLO, **GREEDY)
    assert error.value.status_code == 503


def test_unreachable_upstream_is_unavailable(pair: dict[str, Server], front: OpenAI) -> None:
    card = httpx.get(pair["front"].url + "/v1/models/remote-down").json()
    assert card["state"] == "UNAVAILABLE"
    assert "http://127.0.0.1:" in card["reason"] and "/v1/models/tiny-chat" in card["reason"]
    with pytest.raises(InternalServerError) as error:
        front.chat.completions.create(model="remote-down", messages=HELLO, **GREEDY)
    assert error.value.status_code == 503


def test_oip_infer_through_the_front(upstream: OpenAI, pair: dict[str, Server]) -> None:
    direct = upstream.chat.completions.create(model="tiny-chat", messages=HELLO, **GREEDY)
    body = {
        "inputs": [
            {"name": "role", "shape": [1], "datatype": "BYTES", "data": ["user"]},
            {"name": "content", "shape": [1], "datatype": "BYTES", "data": ["hello"]},
        ],
        "parameters": GREEDY,
    }
    response = httpx.post(pair["front"].url + "/v2/models/remote-chat/infer", json=body, timeout=60)
    assert response.status_code == 200, response.text
    outputs = {o["name"]: o["data"] for o in response.json()["outputs"]}
    assert outputs["content"] == [direct.choices[0].message.content]
