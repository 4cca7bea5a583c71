"""localoip as a gateway to real OIP servers installed from PyPI: MLServer 1.7 (an iris
classifier trained now, a text model, an embedding model) and KServe's ModelServer, reached
through a `localoip serve` with tritonclient (binary and JSON), httpx and the openai SDK,
each answer compared with the same request sent straight to the upstream."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from localoip.app.core.config import ConfigError, load_settings
from openai import OpenAI
from support.peers import kserve, mlserver
from support.servers import Server, Servers
from tritonclient.utils import InferenceServerException

FRONT = """
[[models]]
name = "iris"
runtime = "oip"
source = "{ml}"

[[models]]
name = "text"
runtime = "oip"
source = "{ml}"

[[models]]
name = "vectors"
runtime = "oip"
source = "{ml}"

[[models]]
name = "text-two"
runtime = "oip"
source = "{ml}"
[models.options]
model = "text"
max_concurrency = 2

[[models]]
name = "plus-one"
runtime = "oip"
source = "{ks}"

[[models]]
name = "forced-binary"
runtime = "oip"
source = "{ml}"
[models.options]
model = "text"
binary = true

[[models]]
name = "vectors-as-chat"
runtime = "oip"
source = "{ml}"
[models.options]
model = "vectors"
capabilities = ["chat"]
"""

JSON_TYPE = {"content-type": "application/json"}
IRIS = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]], dtype=np.float32)


@pytest.fixture(scope="module")
def peers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    folder = tmp_path_factory.mktemp("peers")
    with mlserver(folder / "mlserver") as ml, kserve(folder / "kserve") as ks:
        yield {"ml": ml, "ks": ks}


@pytest.fixture(scope="module")
def front(servers: Servers, peers: dict[str, str]) -> Iterator[Server]:
    with servers.alone(FRONT.format(**peers)) as running:
        yield running


@pytest.fixture(scope="module")
def via(front: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=front.url, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def ml(peers: dict[str, str]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=peers["ml"], timeout=60) as client:
        yield client


def states(via: httpx.Client) -> dict[str, dict]:
    return {m["name"]: m for m in via.post("/v2/repository/index", json={}).json()}


def iris_infer(url: str, binary: bool) -> triton.InferResult:
    client = triton.InferenceServerClient(url.removeprefix("http://"))
    tensor = triton.InferInput("input-0", list(IRIS.shape), "FP32")
    tensor.set_data_from_numpy(IRIS, binary_data=binary)
    wanted = [triton.InferRequestedOutput("predict", binary_data=binary)]
    return client.infer("iris", [tensor], outputs=wanted, request_id="req-7")


# -- 1. negotiation: binary or JSON, capabilities found, refusals with the reason ---------------


def test_models_are_ready_and_choose_json_where_mlserver_lists_no_binary_extension(via):
    found = states(via)
    for name in ("iris", "text", "vectors", "plus-one"):
        assert found[name]["state"] == "READY", found[name]


def test_binary_forced_on_mlserver_is_unavailable_with_the_reason(via):
    model = states(via)["forced-binary"]
    assert model["state"] == "UNAVAILABLE"
    assert "binary_tensor_data" in model["reason"] and "binary = false" in model["reason"]


def test_a_configured_capability_the_metadata_does_not_fit_is_unavailable(via):
    model = states(via)["vectors-as-chat"]
    assert model["state"] == "UNAVAILABLE" and "cannot do chat" in model["reason"]


def test_capabilities_are_found_from_the_metadata(via):
    cards = {m["id"]: m for m in via.get("/v1/models").json()["data"]}
    assert cards["iris"]["capabilities"] == ["tensors"]  # declares no tensors: not a chat model
    assert cards["plus-one"]["capabilities"] == ["tensors"]
    assert cards["text"]["capabilities"] == ["chat", "completion", "tensors"]
    assert cards["vectors"]["capabilities"] == ["embed", "rerank", "tensors"]


# -- 2. tensor passthrough ---------------------------------------------------------------------


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_tritonclient_iris_through_localoip_equals_direct(front, peers, binary):
    direct = iris_infer(peers["ml"], binary=False)
    through = iris_infer(front.url, binary=binary)
    assert through.as_numpy("predict").tolist() == direct.as_numpy("predict").tolist()
    response = through.get_response()
    assert response["id"] == "req-7"
    assert response["outputs"][0]["parameters"]["content_type"] == "np"


def test_a_json_infer_is_relayed_whole_id_parameters_and_content_type(via, ml):
    body = {
        "id": "abc",
        "parameters": {"custom": {"deep": [1, 2]}, "temperature": 0.5},
        "inputs": [{"name": "prompt", "shape": [1], "datatype": "BYTES", "data": ["hi there"]}],
    }
    direct = ml.post("/v2/models/text/infer", json=body)
    through = via.post("/v2/models/text/infer", json=body)
    assert through.status_code == direct.status_code == 200
    assert through.json() == direct.json()
    seen = json.loads(through.json()["outputs"][1]["data"][0])
    assert seen == {"custom": {"deep": [1, 2]}, "temperature": 0.5}


def test_the_upstreams_version_urls_and_version_list_pass_through(via, ml):
    body = {
        "inputs": [
            {"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}
        ]
    }
    through = via.post("/v2/models/iris/versions/v1/infer", json=body)
    assert through.status_code == 200, through.text
    assert through.json()["model_version"] == "v1"
    assert via.get("/v2/models/iris/versions/v1/ready").status_code == 200
    metadata = via.get("/v2/models/text").json()
    direct = ml.get("/v2/models/text").json()
    assert metadata["inputs"] == direct["inputs"] and metadata["versions"] == direct["versions"]


def test_infer_stream_is_relayed_event_for_event(via, ml):
    body = {
        "id": "s1",
        "inputs": [{"name": "prompt", "shape": [1], "datatype": "BYTES", "data": ["a b c"]}],
    }

    def events(client: httpx.Client) -> list[dict]:
        response = client.post("/v2/models/text/infer_stream", json=body)
        assert response.status_code == 200, response.text
        return [
            json.loads(line[5:]) for line in response.text.splitlines() if line.startswith("data:")
        ]

    direct, through = events(ml), events(via)
    assert through == direct and len(through) == 4  # "echo:", " a", " b", " c"; none added


def test_tritonclient_against_kserve_in_binary_and_json(front):
    client = triton.InferenceServerClient(front.host)
    for binary in (True, False):
        x = triton.InferInput("x", [3], "FP32")
        x.set_data_from_numpy(np.array([1, 2, 3], dtype=np.float32), binary_data=binary)
        result = client.infer("plus-one", [x], request_id="k")
        assert result.as_numpy("y").tolist() == [2.0, 3.0, 4.0]
    assert client.get_model_metadata("plus-one")["name"] == "plus-one"


def test_binary_bytes_that_are_not_text_cannot_reach_a_json_upstream(front):
    client = triton.InferenceServerClient(front.host)
    prompt = triton.InferInput("prompt", [1], "BYTES")
    prompt.set_data_from_numpy(np.array([b"\xff\xfe"], dtype=object), binary_data=True)
    with pytest.raises(InferenceServerException) as error:
        client.infer("text", [prompt])
    assert "not UTF-8" in str(error.value) and "400" in str(error.value.status())


# -- OpenAI routes to the models that offer them --------------------------------------------------


def test_a_chat_of_several_messages_reaches_the_model_unquoted(front):
    client = OpenAI(base_url=f"{front.url}/v1", api_key="x")
    reply = client.chat.completions.create(
        model="text",
        messages=[{"role": "system", "content": "Be brief"}, {"role": "user", "content": "hi"}],
    )
    assert reply.choices[0].message.content == "system: Be brief | user: hi"


def test_a_streamed_completion_comes_through_infer_stream(front):
    client = OpenAI(base_url=f"{front.url}/v1", api_key="x")
    pieces = client.completions.create(model="text", prompt="one two", stream=True)
    assert "".join(p.choices[0].text for p in pieces) == "echo: one two"
    whole = client.completions.create(model="text", prompt="one two")
    assert whole.choices[0].text == "echo: one two"


def test_embeddings_through_localoip_equal_direct(front, ml):
    client = OpenAI(base_url=f"{front.url}/v1", api_key="x")
    got = client.embeddings.create(model="vectors", input=["a b", "hello"], encoding_format="float")
    body = {
        "inputs": [{"name": "input", "shape": [2], "datatype": "BYTES", "data": ["a b", "hello"]}]
    }
    direct = ml.post("/v2/models/vectors/infer", json=body).json()["outputs"][0]["data"]
    assert np.allclose([v for e in got.data for v in e.embedding], direct, atol=1e-6)


def test_a_tensors_model_is_no_chat_model(front):
    client = OpenAI(base_url=f"{front.url}/v1", api_key="x", max_retries=0)
    with pytest.raises(Exception) as error:
        client.chat.completions.create(model="iris", messages=[{"role": "user", "content": "x"}])
    assert getattr(error.value, "status_code", None) == 400 and "cannot do chat" in str(error.value)


# -- concurrency (figures in bench/gateway.py) ----------------------------------------------------


def test_a_hundred_concurrent_requests_are_all_served(via):
    body = {
        "parameters": {"delay": 0.05},
        "inputs": [{"name": "prompt", "shape": [1], "datatype": "BYTES", "data": ["x"]}],
    }
    with ThreadPoolExecutor(100) as pool:
        statuses = list(
            pool.map(lambda _: via.post("/v2/models/text/infer", json=body).status_code, range(100))
        )
    assert statuses == [200] * 100


def prompt_body(delay: float) -> dict:
    return {
        "parameters": {"delay": delay},
        "inputs": [{"name": "prompt", "shape": [1], "datatype": "BYTES", "data": ["x"]}],
    }


def running(via: httpx.Client, model: str) -> int:
    """The model's calls in flight, as /metrics counts them."""
    line = re.search(
        rf'^localoip_requests_running{{model="{model}"}} (\S+)$', via.get("/metrics").text, re.M
    )
    assert line is not None
    return int(float(line.group(1)))


def wait_until(check, what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def test_a_client_that_hangs_up_mid_call_frees_its_place(front, via):
    """text-two runs two calls at once. Two clients whose calls are in flight upstream (60 s
    of work each) hang up: both places are free again at once, not when the upstream ends,
    and the next two calls are served."""
    request = json.dumps(prompt_body(60)).encode()
    host, port = front.url.removeprefix("http://").split(":")
    hung = []
    for _ in range(2):
        conn = socket.create_connection((host, int(port)))
        conn.sendall(
            f"POST /v2/models/text-two/infer HTTP/1.1\r\nhost: {host}:{port}\r\n"
            f"content-type: application/json\r\ncontent-length: {len(request)}\r\n\r\n".encode()
            + request
        )
        hung.append(conn)
    wait_until(lambda: running(via, "text-two") == 2, "the two calls never started")
    for conn in hung:
        conn.close()
    wait_until(lambda: running(via, "text-two") == 0, "a call that lost its client kept its place")
    with ThreadPoolExecutor(2) as pool:
        answers = list(
            pool.map(lambda _: via.post("/v2/models/text-two/infer", json=prompt_body(0)), range(2))
        )
    assert [a.status_code for a in answers] == [200, 200]
    assert answers[0].json()["outputs"][0]["data"] == ["echo: x"]


def test_an_unload_lets_the_relayed_calls_in_flight_finish(via):
    """An unload waits for the relayed calls in flight on the model's asyncio client, which
    it then closes: none of them is cut."""
    answers: list[tuple[httpx.Response, float]] = []

    def ask() -> None:
        answer = via.post("/v2/models/text-two/infer", json=prompt_body(1.0))
        answers.append((answer, time.monotonic()))

    calls = [threading.Thread(target=ask) for _ in range(2)]
    for call in calls:
        call.start()
    wait_until(lambda: running(via, "text-two") == 2, "the two calls never started")
    unloaded = via.post("/v2/repository/models/text-two/unload")
    unloaded_at = time.monotonic()
    for call in calls:
        call.join()
    assert unloaded.status_code == 200
    assert [a.status_code for a, _ in answers] == [200, 200], [a.text for a, _ in answers]
    assert all(a.json()["outputs"][0]["data"] == ["echo: x"] for a, _ in answers)
    assert unloaded_at >= max(done for _, done in answers)  # it waited for both
    assert states(via)["text-two"]["reason"] == "unloaded"
    assert via.post("/v2/repository/models/text-two/load").status_code == 200
    assert via.post("/v2/models/text-two/infer", json=prompt_body(0)).status_code == 200


# -- errors that read ---------------------------------------------------------------------------


def test_an_upstream_422_keeps_its_status_with_its_message_and_no_echo(via, ml):
    secret = "do-not-echo-this-" + "x" * 40
    body = {"inputs": [{"name": secret, "shape": [1], "datatype": "NOPE", "data": [1]}]}
    assert ml.post("/v2/models/text/infer", json=body).status_code == 422
    through = via.post("/v2/models/text/infer", json=body)
    assert through.status_code == 422
    error = through.json()["error"]
    assert isinstance(error, str) and "datatype" in error and secret not in through.text


def test_an_upstream_server_fault_is_a_502_with_its_words(via):
    body = {"inputs": [{"name": "input-0", "shape": [1, 2], "datatype": "FP32", "data": [1, 2]}]}
    through = via.post("/v2/models/iris/infer", json=body)
    assert through.status_code == 502 and "500" in through.json()["error"]


def test_a_body_that_is_not_json_is_the_upstreams_client_error_and_serving_goes_on(via, ml):
    """A plain request goes upstream as its own bytes, unread here: a broken one is judged
    there, and the client gets the upstream's client error in OIP's shape."""
    broken = b'{"inputs": [{"name": "prompt", "shape": [1],'
    direct = ml.post("/v2/models/text/infer", content=broken, headers=JSON_TYPE)
    through = via.post("/v2/models/text/infer", content=broken, headers=JSON_TYPE)
    assert 400 <= direct.status_code < 500
    assert through.status_code == direct.status_code
    assert isinstance(through.json()["error"], str) and through.json()["error"]
    assert via.post("/v2/models/text/infer", json=prompt_body(0)).status_code == 200


# -- configuration ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "complaint"),
    [
        ("max_concurrency = 0", "max_concurrency"),
        ('max_concurrency = "many"', "max_concurrency"),
        ('capabilities = ["tensors", "rerank"]', "capabilities"),
        ('binary = "yes"', "binary"),
    ],
    ids=["zero-concurrency", "text-concurrency", "bad-capability", "text-binary"],
)
def test_gateway_options_refuse_bad_values_by_name(tmp_path: Path, option, complaint):
    path = tmp_path / "models.toml"
    path.write_text(
        f'[[models]]\nname = "r"\nruntime = "oip"\nsource = "http://h:8000"\n'
        f"[models.options]\n{option}\n"
    )
    with pytest.raises(ConfigError) as error:
        load_settings(path)
    assert complaint in str(error.value)
