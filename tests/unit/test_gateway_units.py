"""The gateway's pieces without a server: re-encoding binary requests as JSON, reading an
upstream's error, mapping its status, what a model's metadata offers, and a remote model's
places (Turns with a width)."""

from __future__ import annotations

import asyncio
import json
import struct

import httpx
import msgspec
import numpy as np
import pytest
from localoip.app.core.errors import QueueFull
from localoip.app.core.models.turns import Turns
from localoip.runtimes.capabilities import Capability, InputError
from localoip.runtimes.remote.common import upstream_message, upstream_status
from localoip.runtimes.remote.negotiate import Upstream
from localoip.runtimes.wire.oip import json_request


def binary_body(**extra: object) -> tuple[bytes, str]:
    text = struct.pack("<I", 5) + b"hello"
    numbers = np.array([1.5, -2.0], dtype="<f4").tobytes()
    head = json.dumps(
        {
            "id": "r1",
            "parameters": {"binary_data_output": True, "custom": {"k": [1]}},
            "inputs": [
                {
                    "name": "t",
                    "shape": [1],
                    "datatype": "BYTES",
                    "parameters": {"binary_data_size": len(text), "content_type": "str"},
                },
                {
                    "name": "x",
                    "shape": [2],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": len(numbers)},
                },
            ],
            "outputs": [{"name": "y", "parameters": {"binary_data": True}}],
            **extra,
        }
    ).encode()
    return head + text + numbers, str(len(head))


def test_a_binary_request_becomes_json_keeping_id_parameters_and_outputs():
    body, length = binary_body()
    sent = json.loads(json_request(body, length))
    assert sent["id"] == "r1" and sent["parameters"] == {"custom": {"k": [1]}}
    assert sent["inputs"][0] == {
        "name": "t",
        "shape": [1],
        "datatype": "BYTES",
        "parameters": {"content_type": "str"},
        "data": ["hello"],
    }
    assert sent["inputs"][1] == {"name": "x", "shape": [2], "datatype": "FP32", "data": [1.5, -2.0]}
    assert sent["outputs"] == [{"name": "y", "parameters": {}}]


def test_a_plain_json_request_goes_as_its_own_bytes():
    body = b'{"id": "a", "inputs": [{"name": "x", "shape": [1], "datatype": "INT32", "data": [3]}]}'
    assert json_request(body, None) is body


def test_bytes_that_are_not_text_cannot_become_json():
    head = json.dumps(
        {
            "inputs": [
                {
                    "name": "b",
                    "shape": [1],
                    "datatype": "BYTES",
                    "parameters": {"binary_data_size": 6},
                }
            ]
        }
    ).encode()
    with pytest.raises(InputError, match="not UTF-8"):
        json_request(head + struct.pack("<I", 2) + b"\xff\xfe", str(len(head)))


def test_a_request_that_is_not_an_infer_request_is_an_input_error():
    with pytest.raises(InputError, match="malformed"):
        json_request(b'{"inputs": 3}', "13")


def answer(status: int, content: bytes, kind: str = "application/json") -> httpx.Response:
    return httpx.Response(status, content=content, headers={"content-type": kind})


def test_fastapis_422_reads_as_each_place_and_message_without_the_echoed_input():
    body = msgspec.json.encode(
        {
            "detail": [
                {
                    "loc": ["body", "inputs", 0, "datatype"],
                    "msg": "Input should be 'FP32'",
                    "input": "SECRET-BODY",
                }
            ]
        }
    )
    message = upstream_message(answer(422, body))
    assert message == "body.inputs.0.datatype: Input should be 'FP32'"


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (answer(400, b'{"error": "bad shape"}'), "bad shape"),
        (answer(400, b'{"error": {"message": "no such tool"}}'), "no such tool"),
        (answer(500, b"Internal Server Error", "text/plain"), "Internal Server Error"),
        (answer(502, b"<html>SECRET</html>", "text/html"), "Bad Gateway"),
    ],
    ids=["oip", "openai", "plain-text", "html-never-echoed"],
)
def test_upstream_messages(response, message):
    assert upstream_message(response) == message


@pytest.mark.parametrize(
    ("upstream", "ours"),
    [
        (400, 400),
        (404, 404),
        (422, 422),
        (429, 429),
        (401, 502),
        (403, 502),
        (500, 502),
        (503, 503),
        (504, 504),
    ],
)
def test_upstream_statuses_keep_client_errors_and_make_server_faults_ours(upstream, ours):
    assert upstream_status(upstream) == ours


@pytest.mark.parametrize(
    ("inputs", "outputs", "offers"),
    [
        ((), (), {"tensors"}),
        (("input-0",), ("predict",), {"tensors"}),
        (("role", "content", "type", "prompt"), (), {"chat", "completion", "tensors"}),
        (("prompt",), ("image",), {"image", "tensors"}),
        (("input",), ("embedding",), {"embed", "tensors"}),
    ],
    ids=["none-declared", "iris", "text", "images", "embeddings"],
)
def test_what_a_models_metadata_offers(inputs, outputs, offers):
    upstream = Upstream(frozenset(), frozenset(inputs), frozenset(outputs), ())
    assert upstream.offers() == {Capability(c) for c in offers}


def test_a_configured_capability_its_inputs_lack_is_refused_by_name():
    upstream = Upstream(frozenset(), frozenset({"input"}), frozenset(), ())
    assert "cannot do chat" in upstream.refusal(frozenset({Capability.CHAT}))
    assert upstream.refusal(frozenset({Capability.EMBED, Capability.TENSORS})) is None


def test_a_remote_models_turns_run_width_calls_at_once_then_queue():
    async def main() -> tuple[int, bool, bool]:
        turns = Turns("r", 8, lambda: 3, on_busy=lambda: None, on_idle=lambda: None, width=3)
        for _ in range(3):
            await asyncio.wait_for(turns.acquire(), 1)  # none waits
        fourth = asyncio.ensure_future(turns.acquire())
        await asyncio.sleep(0)
        waited = not fourth.done()
        turns.release()
        await asyncio.wait_for(fourth, 1)
        return 3, waited, fourth.done()

    assert asyncio.run(main()) == (3, True, True)


def test_retry_after_comes_from_the_measured_latency_past_the_limit():
    async def main() -> int:
        turns = Turns("r", 2, lambda: 64, on_busy=lambda: None, on_idle=lambda: None, width=64)
        turns.served(0.005)  # a model that answers in milliseconds
        async with turns.admitted(), turns.admitted():
            try:
                async with turns.admitted():
                    return 0
            except QueueFull as full:
                return int(full.headers["Retry-After"])

    assert asyncio.run(main()) == 1
