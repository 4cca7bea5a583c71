"""The `oip` remote runtime: a front localoip fronting a second localoip (and stubs) over OIP."""

from __future__ import annotations

import base64
import gzip
import io
import json
import struct
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from localoip.app.core.config import ConfigError, load_settings
from localoip.runtimes.wire.oip import HEADER_LENGTH
from openai import BadRequestError, OpenAI
from PIL import Image
from support.configs import scripted_chats, tiny_chat, tiny_embed, tiny_sd
from support.family import ANSWER, REASONING
from support.servers import Server, Servers, free_port

FRONT = """
[[models]]
name = "remote-chat"
runtime = "oip"
source = "{upstream}"
[models.options]
model = "tiny-chat"

[[models]]
name = "remote-embed"
runtime = "oip"
source = "{upstream}"
[models.options]
model = "tiny-embed"
capabilities = ["embed"]

[[models]]
name = "remote-sd"
runtime = "oip"
source = "{upstream}"
[models.options]
model = "tiny-sd"
capabilities = ["image"]

[[models]]
name = "stub"
runtime = "oip"
source = "{stub}"
[models.options]
binary = false
capabilities = ["chat", "completion"]

[[models]]
name = "later"
runtime = "oip"
source = "{later}"
[models.options]
model = "stub"
retry_seconds = 0.2

[[models]]
name = "remote-thinking"
runtime = "oip"
source = "{upstream}"
[models.options]
model = "qwen3-thinking"

[[models]]
name = "not-there"
runtime = "oip"
source = "{upstream}"

[[models]]
name = "wrong-kind"
runtime = "oip"
source = "{upstream}"
[models.options]
model = "tiny-chat"
capabilities = ["embed"]
"""

HELLO = [{"role": "user", "content": "hello"}]
GREEDY = {"max_tokens": 8, "temperature": 0}
STUB_REPLY = "from the gzip stub"


def text(name: str, values: list[str]) -> dict[str, Any]:
    return {"name": name, "shape": [len(values)], "datatype": "BYTES", "data": values}


class Stub(BaseHTTPRequestHandler):
    """A minimal OIP upstream for model "stub" that gzips its answers, has no streaming routes,
    records what it receives, refuses a JSON chat whose content is "fail", and takes 1.5 s to
    answer one whose content is "slow"."""

    received: ClassVar[list[tuple[str, dict[str, str], bytes]]] = []

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        packed = gzip.compress(body)
        self.send_response(status)
        for key, value in {"content-type": "application/json", **(headers or {})}.items():
            self.send_header(key, value)
        self.send_header("content-encoding", "gzip")
        self.send_header("content-length", str(len(packed)))
        self.end_headers()
        self.wfile.write(packed)

    def do_GET(self) -> None:
        if self.path == "/v2/models/stub/ready":
            self._send(200, b'{"name": "stub", "ready": true}')
        elif self.path == "/v2/models/stub":
            self._send(200, json.dumps({"name": "stub", "inputs": []}).encode())
        else:
            self._send(404, b'{"error": "unknown model"}')

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        headers = {k.lower(): v for k, v in self.headers.items()}
        Stub.received.append((self.path, headers, body))
        if self.path != "/v2/models/stub/infer":
            self._send(404, b'{"error": "no such route"}')
            return
        length = headers.get(HEADER_LENGTH.lower())
        inputs = json.loads(body[: int(length)] if length else body)["inputs"]
        output = "text" if any(i["name"] == "prompt" for i in inputs) else "content"
        if length:  # answer in the binary extension
            blob = struct.pack("<I", len(STUB_REPLY)) + STUB_REPLY.encode()
            tensor = {"name": output, "shape": [1], "datatype": "BYTES"}
            head = json.dumps(
                {
                    "model_name": "stub",
                    "outputs": [{**tensor, "parameters": {"binary_data_size": len(blob)}}],
                }
            ).encode()
            self._send(200, head + blob, {HEADER_LENGTH: str(len(head))})
        elif any(i["name"] == "content" and i["data"] == ["fail"] for i in inputs):
            self._send(422, b'{"error": "the stub refuses to answer fail"}')
        else:
            if any(i["name"] == "content" and i["data"] == ["slow"] for i in inputs):
                time.sleep(1.5)
            reply = {"model_name": "stub", "outputs": [text(output, [STUB_REPLY])]}
            self._send(200, json.dumps(reply).encode())

    def log_message(self, *args: object) -> None:
        """Quiet."""


def serve_stub(port: int = 0) -> tuple[ThreadingHTTPServer, threading.Thread]:
    stub = ThreadingHTTPServer(("127.0.0.1", port), Stub)
    thread = threading.Thread(target=stub.serve_forever, daemon=True)
    thread.start()
    return stub, thread


def close_stub(stub: ThreadingHTTPServer, thread: threading.Thread) -> None:
    stub.shutdown()
    stub.server_close()
    thread.join()


@pytest.fixture(scope="module")
def stub() -> Iterator[ThreadingHTTPServer]:
    running, thread = serve_stub()
    yield running
    close_stub(running, thread)


@pytest.fixture(scope="module")
def later_port() -> int:
    """A port where no upstream listens until a test starts one."""
    return free_port()


@pytest.fixture(scope="module")
def pair(
    servers: Servers,
    tiny_dir: Path,
    scripted_dir: Path,
    stub: ThreadingHTTPServer,
    later_port: int,
) -> Iterator[dict[str, Server]]:
    """The upstream serving tiny models (and a scripted reasoning model), and the front
    forwarding to it over OIP."""
    upstream_config = (
        tiny_chat(tiny_dir)
        + tiny_embed(tiny_dir)
        + tiny_sd(tiny_dir)
        + scripted_chats(scripted_dir, ["qwen3-thinking"])
    )
    with servers.shared(upstream_config) as upstream:
        front_config = FRONT.format(
            upstream=upstream.url,
            stub=f"http://127.0.0.1:{stub.server_address[1]}",
            later=f"http://127.0.0.1:{later_port}",
        )
        with servers.alone(front_config) as front:
            yield {"upstream": upstream, "front": front}


@pytest.fixture(scope="module")
def up(pair: dict[str, Server]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=pair["upstream"].url, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def front(pair: dict[str, Server]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=pair["front"].url, timeout=60) as client:
        yield client


def infer(client: httpx.Client, model: str, inputs: list[dict], **parameters: Any) -> dict:
    response = client.post(
        f"/v2/models/{model}/infer", json={"inputs": inputs, "parameters": parameters}
    )
    assert response.status_code == 200, response.text
    return {o["name"]: o for o in response.json()["outputs"]}


def sse(response: httpx.Response) -> list[dict]:
    return [json.loads(line[5:]) for line in response.iter_lines() if line.startswith("data:")]


# -- OIP routes through the front ------------------------------------------------------------


def test_chat_over_oip_equals_the_upstream_answer(up, front):
    messages = [text("role", ["system", "user"]), text("content", ["Be brief.", "hello"])]
    direct = infer(up, "tiny-chat", messages, **GREEDY)
    fronted = infer(front, "remote-chat", messages, **GREEDY)
    assert fronted["content"]["data"] == direct["content"]["data"] != [""]
    assert fronted["role"]["data"] == ["assistant"]


def test_reasoning_over_oip_comes_back_as_its_tensor_and_as_reasoning_content(up, front):
    ask = [text("role", ["user"]), text("content", ["Weather?"])]
    for client, model in ((up, "qwen3-thinking"), (front, "remote-thinking")):
        outputs = infer(client, model, ask, temperature=0)
        assert (outputs["content"]["data"], outputs["reasoning"]["data"]) == (
            [ANSWER],
            [REASONING],
        )
    v1 = OpenAI(base_url=str(front.base_url) + "/v1", api_key="x", max_retries=0)
    chunks = v1.chat.completions.create(
        model="remote-thinking",
        messages=[{"role": "user", "content": "Weather?"}],
        temperature=0,
        stream=True,
    )
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    thought = "".join((d.model_extra or {}).get("reasoning_content") or "" for d in deltas)
    assert (thought, "".join(d.content or "" for d in deltas)) == (REASONING, ANSWER)


def test_completion_over_oip_equals_the_upstream_answer(up, front):
    prompt = [text("prompt", ["Once upon a time"])]
    direct = infer(up, "tiny-chat", prompt, **GREEDY)
    assert infer(front, "remote-chat", prompt, **GREEDY)["text"] == direct["text"]


def test_embeddings_over_oip_equal_the_upstream_vectors(up, front):
    inputs = [text("input", ["a cat", "a kitten", "a car"])]
    direct = infer(up, "tiny-embed", inputs)["embedding"]
    fronted = infer(front, "remote-embed", inputs)["embedding"]
    assert fronted["datatype"] == "FP32"
    assert fronted["shape"] == direct["shape"] == [3, 64]
    np.testing.assert_array_equal(fronted["data"], direct["data"])


def test_images_over_oip_are_the_upstream_pngs(up, front):
    settings = {"seed": 3, "steps": 2, "width": 64, "height": 64}
    direct = infer(up, "tiny-sd", [text("prompt", ["a red square"])], **settings)["image"]
    fronted = infer(front, "remote-sd", [text("prompt", ["a red square"])], **settings)["image"]
    png = base64.b64decode(fronted["data"][0])
    assert Image.open(io.BytesIO(png)).size == (64, 64)
    assert fronted["data"] == direct["data"]


def test_generate_stream_passes_through_token_by_token(up, front):
    body = {"text_input": "Once upon a time", "parameters": GREEDY}
    with up.stream("POST", "/v2/models/tiny-chat/generate_stream", json=body) as direct:
        want = sse(direct)
    with front.stream("POST", "/v2/models/remote-chat/generate_stream", json=body) as fronted:
        assert fronted.headers["content-type"].startswith("text/event-stream")
        got = sse(fronted)
    assert len(got) == len(want) > 1, (got, want)
    assert [e["text_output"] for e in got] == [e["text_output"] for e in want]
    assert got[-1]["finish_reason"] == want[-1]["finish_reason"] == "length"
    assert {e["model_name"] for e in got} == {"remote-chat"}


def test_infer_stream_chat_adds_up_to_the_upstream_answer(up, front):
    messages = [text("role", ["user"]), text("content", ["hello"])]
    direct = infer(up, "tiny-chat", messages, **GREEDY)["content"]["data"][0]
    body = {"inputs": messages, "parameters": GREEDY}
    with front.stream("POST", "/v2/models/remote-chat/infer_stream", json=body) as response:
        events = sse(response)
    assert len(events) > 1
    pieces = [o["data"][0] for e in events for o in e["outputs"] if o["name"] == "content"]
    assert "".join(pieces) == direct


def test_generate_equals_the_upstream_text(up, front):
    body = {"text_input": "Once upon a time", "parameters": GREEDY}
    direct = up.post("/v2/models/tiny-chat/generate", json=body).json()
    fronted = front.post("/v2/models/remote-chat/generate", json=body).json()
    assert fronted["text_output"] == direct["text_output"] != ""
    assert fronted["model_name"] == "remote-chat"


def test_tritonclient_binary_request_is_forwarded_byte_for_byte(pair, up, front):
    client = triton.InferenceServerClient(pair["front"].host)
    values = triton.InferInput("input", [2], "BYTES")
    values.set_data_from_numpy(np.array([b"a cat", b"a car"], dtype=object))
    got = client.infer("remote-embed", [values]).as_numpy("embedding")
    direct = np.asarray(
        infer(up, "tiny-embed", [text("input", ["a cat", "a car"])])["embedding"]["data"]
    )
    np.testing.assert_array_equal(got, direct.reshape(2, 64))
    # The same binary body, sent to both, gives the same bytes back.
    head = json.dumps(
        {
            "inputs": [
                {
                    "name": "input",
                    "shape": [1],
                    "datatype": "BYTES",
                    "parameters": {"binary_data_size": 9},
                }
            ],
            "parameters": {"binary_data_output": True},
        }
    ).encode()
    body = head + struct.pack("<I", 5) + b"a cat"
    headers = {HEADER_LENGTH: str(len(head))}
    direct_bytes = up.post("/v2/models/tiny-embed/infer", content=body, headers=headers)
    fronted_bytes = front.post("/v2/models/remote-embed/infer", content=body, headers=headers)
    assert fronted_bytes.status_code == direct_bytes.status_code == 200
    assert fronted_bytes.content == direct_bytes.content
    assert fronted_bytes.headers[HEADER_LENGTH] == direct_bytes.headers[HEADER_LENGTH]


def test_binary_bodies_reach_the_upstream_unchanged_and_come_back_unchanged(front):
    head = b'{"inputs": [{"name": "anything", "shape": [1], "datatype": "UINT8", ' + (
        b'"parameters": {"binary_data_size": 1}}]}'
    )
    body = head + b"\x07"
    Stub.received.clear()
    response = front.post(
        "/v2/models/stub/infer", content=body, headers={HEADER_LENGTH: str(len(head))}
    )
    assert response.status_code == 200
    ((path, headers, received),) = Stub.received
    assert (path, received) == ("/v2/models/stub/infer", body)
    assert headers[HEADER_LENGTH.lower()] == str(len(head))
    length = int(response.headers[HEADER_LENGTH])  # un-gzipped, else as the stub sent it
    assert json.loads(response.content[:length])["outputs"][0]["name"] == "content"
    assert response.content[length:] == struct.pack("<I", len(STUB_REPLY)) + STUB_REPLY.encode()


def test_gzip_answers_are_read(front):
    reply = infer(front, "stub", [text("role", ["user"]), text("content", ["hi"])])
    assert reply["content"]["data"] == [STUB_REPLY]


def test_streams_fall_back_to_one_answer_without_the_upstream_routes(front):
    Stub.received.clear()
    body = {"text_input": "hi"}
    with front.stream("POST", "/v2/models/stub/generate_stream", json=body) as response:
        events = sse(response)
    assert [(e["text_output"], e["finish_reason"]) for e in events] == [(STUB_REPLY, "stop")]
    client = OpenAI(base_url=f"{front.base_url}/v1", api_key="x", max_retries=0)
    for _ in range(2):
        chunks = list(
            client.chat.completions.create(model="stub", messages=HELLO, stream=True, max_tokens=4)
        )
        streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert streamed == STUB_REPLY
    paths = [path for path, _, _ in Stub.received]
    assert paths == [  # the stub lists no generate extension; a missing route is tried once
        "/v2/models/stub/infer_stream",
        "/v2/models/stub/infer",
        "/v2/models/stub/infer",
        "/v2/models/stub/infer",
    ]


# -- OpenAI routes through the front ---------------------------------------------------------


@pytest.fixture(scope="module")
def openai_up(pair: dict[str, Server]) -> OpenAI:
    return OpenAI(base_url=pair["upstream"].url + "/v1", api_key="x", max_retries=0)


@pytest.fixture(scope="module")
def openai_front(pair: dict[str, Server]) -> OpenAI:
    return OpenAI(base_url=pair["front"].url + "/v1", api_key="x", max_retries=0)


def test_openai_chat_and_its_stream_equal_the_upstream(openai_up, openai_front):
    direct = openai_up.chat.completions.create(model="tiny-chat", messages=HELLO, **GREEDY)
    reply = openai_front.chat.completions.create(model="remote-chat", messages=HELLO, **GREEDY)
    assert reply.choices[0].message.content == direct.choices[0].message.content != ""
    chunks = list(
        openai_front.chat.completions.create(
            model="remote-chat", messages=HELLO, stream=True, **GREEDY
        )
    )
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == direct.choices[0].message.content


def test_openai_completions_and_their_stream_equal_the_upstream(openai_up, openai_front):
    direct = openai_up.completions.create(model="tiny-chat", prompt="Once upon", **GREEDY)
    reply = openai_front.completions.create(model="remote-chat", prompt="Once upon", **GREEDY)
    assert reply.choices[0].text == direct.choices[0].text != ""
    chunks = list(
        openai_front.completions.create(
            model="remote-chat", prompt="Once upon", stream=True, **GREEDY
        )
    )
    direct_chunks = list(
        openai_up.completions.create(model="tiny-chat", prompt="Once upon", stream=True, **GREEDY)
    )
    assert len(chunks) == len(direct_chunks) > 1
    assert "".join(c.choices[0].text for c in chunks) == direct.choices[0].text
    assert chunks[-1].choices[0].finish_reason == "length"


def test_openai_embeddings_equal_the_upstream(openai_up, openai_front):
    texts = ["a small test", "another sentence"]
    direct = openai_up.embeddings.create(model="tiny-embed", input=texts)
    reply = openai_front.embeddings.create(model="remote-embed", input=texts)
    np.testing.assert_allclose(
        [d.embedding for d in reply.data], [d.embedding for d in direct.data], atol=1e-6
    )


def test_openai_images_equal_the_upstream(openai_up, openai_front):
    settings = {"prompt": "a red square", "size": "64x64", "response_format": "b64_json"}
    extra = {"steps": 2, "seed": 7}
    direct = openai_up.images.generate(model="tiny-sd", extra_body=extra, **settings)
    reply = openai_front.images.generate(model="remote-sd", extra_body=extra, **settings)
    assert reply.data[0].b64_json == direct.data[0].b64_json


def test_tools_cannot_travel_as_tensors(openai_front):
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    with pytest.raises(BadRequestError) as error:
        openai_front.chat.completions.create(
            model="remote-chat", messages=HELLO, tools=[tool], tool_choice="required"
        )
    assert error.value.param == "tools"


def test_a_continued_reply_cannot_travel_as_tensors(openai_front):
    with pytest.raises(BadRequestError) as error:
        openai_front.chat.completions.create(
            model="remote-chat",
            messages=[*HELLO, {"role": "assistant", "content": "He"}],
            extra_body={"continue_final_message": True},
        )
    assert error.value.param == "continue_final_message"


# -- errors and availability -----------------------------------------------------------------


def test_upstream_errors_keep_their_status_in_both_shapes(up, front, openai_front):
    too_big = {"width": 2048, "height": 64}
    direct = up.post(
        "/v2/models/tiny-sd/infer", json={"inputs": [text("prompt", ["x"])], "parameters": too_big}
    )
    fronted = front.post(
        "/v2/models/remote-sd/infer",
        json={"inputs": [text("prompt", ["x"])], "parameters": too_big},
    )
    assert fronted.status_code == direct.status_code == 400
    assert fronted.json() == direct.json()
    with pytest.raises(BadRequestError) as error:
        openai_front.images.generate(model="remote-sd", prompt="x", size="2048x64")
    assert direct.json()["error"] in error.value.message
    refused = front.post(
        "/v2/models/stub/infer",
        json={"inputs": [text("role", ["user"]), text("content", ["fail"])]},
    )
    assert refused.status_code == 422
    assert refused.json() == {"error": "the stub refuses to answer fail"}


def model_state(front: httpx.Client, name: str) -> dict[str, str]:
    return next(m for m in front.post("/v2/repository/index").json() if m["name"] == name)


def test_a_model_the_upstream_lacks_is_unavailable_with_the_reason(front):
    state = model_state(front, "not-there")
    assert state["state"] == "UNAVAILABLE"
    assert "does not serve model 'not-there'" in state["reason"]
    response = front.post("/v2/models/not-there/infer", json={"inputs": [text("prompt", ["x"])]})
    assert response.status_code == 503
    assert "does not serve model" in response.json()["error"]


def test_an_upstream_model_without_our_tensors_is_unavailable(front):
    state = model_state(front, "wrong-kind")
    assert state["state"] == "UNAVAILABLE"
    assert "cannot do embed" in state["reason"] and "'input'" in state["reason"]


def test_an_unreachable_upstream_is_unavailable_and_recovers_by_itself(front, later_port):
    state = model_state(front, "later")
    assert state["state"] == "UNAVAILABLE"
    assert f"127.0.0.1:{later_port}" in state["reason"] and "unreachable" in state["reason"]
    assert front.get("/v2/models/later/ready").status_code == 503
    assert front.get("/v2/health/ready").status_code == 200  # settled: one model is down
    running, thread = serve_stub(later_port)
    try:
        for _ in range(300):  # retries every 0.2 s; bounded by attempts
            if front.get("/v2/models/later/ready").status_code == 200:
                break
            time.sleep(0.1)
        state = model_state(front, "later")
        assert {key: state[key] for key in ("name", "version", "state", "reason", "runner")} == {
            "name": "later",
            "version": "1",
            "state": "READY",
            "reason": "",
            "runner": None,  # a remote model runs in no runner process
        }
        assert state["download"] is None and state["file_size"] is None  # nothing local
        reply = infer(front, "later", [text("role", ["user"]), text("content", ["hi"])])
        assert reply["content"]["data"] == [STUB_REPLY]
    finally:
        close_stub(running, thread)


# -- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ('source = "models/x"', "the oip runtime needs the upstream's base URL"),
        ('source = "http://h:8000"\n[models.options]\nretries = 3', "retries"),
        ('source = "http://h:8000"\n[models.options]\nretry_seconds = -1', "retry_seconds"),
        ('source = "http://h:8000"\n[models.options]\ncapabilities = []', "capabilities"),
        ('source = "http://h:8000"\n[models.options]\ncapabilities = ["rerank"]', "capabilities"),
        ('source = "http://h:8000"\n[models.options]\ntimeout = 0', "timeout"),
    ],
    ids=[
        "path-source",
        "unknown-option",
        "negative-retry",
        "no-capabilities",
        "bad-kind",
        "timeout",
    ],
)
def test_oip_config_errors_name_the_field(tmp_path, body, complaint):
    path = tmp_path / "models.toml"
    path.write_text(f'[[models]]\nname = "r"\nruntime = "oip"\n{body}\n')
    with pytest.raises(ConfigError) as error:
        load_settings(path)
    assert str(path) in str(error.value) and "model 'r'" in str(error.value)
    assert complaint in str(error.value)


def test_the_upstream_model_name_defaults_to_ours(tmp_path):
    path = tmp_path / "models.toml"
    path.write_text('[[models]]\nname = "r"\nruntime = "oip"\nsource = "http://h:8000"\n')
    (model,) = load_settings(path).models
    assert model.options.model == "r"
    assert sorted(model.options.capabilities()) == ["tensors"]  # the rest found at load


def test_an_unload_waits_for_the_calls_in_flight_and_loses_none(front):
    """A remote model's calls run side by side, not under the model's lock: an unload must
    still wait for those in flight, not close their client under them."""
    answers: list[tuple[httpx.Response, float]] = []
    slow = {"messages": [{"role": "user", "content": "slow"}], "model": "stub", **GREEDY}

    def ask() -> None:
        answer = front.post("/v1/chat/completions", json=slow)
        answers.append((answer, time.monotonic()))

    calls = [threading.Thread(target=ask) for _ in range(3)]
    for call in calls:
        call.start()
    deadline = time.monotonic() + 10
    while sum(path.endswith("/infer") for path, _, _ in Stub.received[-3:]) < 3:
        assert time.monotonic() < deadline, "the slow calls never reached the stub"
        time.sleep(0.02)
    unloaded = front.post("/v2/repository/models/stub/unload")
    unloaded_at = time.monotonic()
    for call in calls:
        call.join()
    assert unloaded.status_code == 200
    assert [a.status_code for a, _ in answers] == [200, 200, 200], [a.text for a, _ in answers]
    assert {a.json()["choices"][0]["message"]["content"] for a, _ in answers} == {STUB_REPLY}
    assert unloaded_at >= max(done for _, done in answers)  # it waited for all three
    index = {m["name"]: m for m in front.post("/v2/repository/index").json()}
    assert index["stub"]["state"] == "UNAVAILABLE" and index["stub"]["reason"] == "unloaded"
    assert front.post("/v2/repository/models/stub/load").status_code == 200
    again = front.post("/v1/chat/completions", json={**slow, "messages": HELLO})
    assert again.status_code == 200
