"""The client half of the tensor codec round-trips with the server half, JSON and binary."""

from __future__ import annotations

import json

import numpy as np
import pytest
from localoip.app.api.oip.codecs import decode_request, encode_response
from localoip.app.api.oip.types import InferenceResponse
from localoip.runtimes.capabilities import InputError
from localoip.runtimes.wire.oip import HEADER_LENGTH, Output, decode_response, encode_request

INPUTS = [
    Output("role", "BYTES", [2], ["system", "user"]),
    Output("content", "BYTES", [2], ["Be brief.", "héllo"]),
    Output("x", "FP32", [2, 2], np.array([[1, 2], [3, 4.5]], dtype=np.float32)),
]


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_requests_the_client_encodes_decode_on_the_server(binary):
    body, headers = encode_request(INPUTS, {"temperature": 0}, binary=binary)
    request, tensors = decode_request(body, headers.get(HEADER_LENGTH))
    assert tensors["role"].strings() == ["system", "user"]
    assert tensors["content"].strings() == ["Be brief.", "héllo"]
    np.testing.assert_array_equal(tensors["x"].values, [1, 2, 3, 4.5])
    assert request.parameters["temperature"] == 0
    assert request.parameters.get("binary_data_output", False) is binary
    assert (HEADER_LENGTH in headers) is binary


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_responses_the_server_encodes_decode_on_the_client(binary):
    outputs = [
        Output("embedding", "FP32", [2, 3], np.arange(6, dtype=np.float32).reshape(2, 3)),
        Output("image", "BYTES", [1], [b"\x89PNG\r\n\x1a\n..."]),
    ]
    names = {o.name for o in outputs} if binary else set()
    body, headers = encode_response(InferenceResponse(model_name="m", outputs=[]), outputs, names)
    tensors = decode_response(body, headers.get(HEADER_LENGTH))
    assert tensors["embedding"].shape == [2, 3]
    np.testing.assert_array_equal(tensors["embedding"].values, np.arange(6))
    image = tensors["image"].values[0]
    assert image == (b"\x89PNG\r\n\x1a\n..." if binary else b"iVBORw0KGgouLi4=")  # base64 in JSON


@pytest.mark.parametrize(
    ("body", "length", "complaint"),
    [
        (b"not json", None, "malformed inference response"),
        (
            b'{"outputs": [{"name": "a", "shape": [1], "datatype": "FP8", "data": [1]}]}',
            None,
            "FP8",
        ),
        (b'{"outputs": []}tail', "15", "no output's binary_data_size"),
        (
            b'{"outputs": [{"name": "a", "shape": [2], "datatype": "BYTES", "data": ["x"]}]}',
            None,
            "2",
        ),
    ],
    ids=["not-json", "unknown-datatype", "extra-bytes", "short-data"],
)
def test_unreadable_responses_are_input_errors_naming_the_output(body, length, complaint):
    with pytest.raises(InputError, match=complaint):
        decode_response(body, length)


def test_json_requests_carry_no_parameters_unless_given():
    body, headers = encode_request([Output("input", "BYTES", [1], ["a"])], {})
    assert json.loads(body) == {
        "inputs": [{"name": "input", "shape": [1], "datatype": "BYTES", "data": ["a"]}]
    }
    assert headers == {"content-type": "application/json"}
