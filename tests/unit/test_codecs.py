"""The tensor codec module: JSON and binary tensors in, JSON and binary tensors out."""

from __future__ import annotations

import base64
import json
import struct

import numpy as np
import pytest
from localoip.app.api.oip.codecs import (
    HEADER_LENGTH,
    Output,
    binary_outputs,
    decode_request,
    encode_response,
)
from localoip.app.api.oip.types import InferenceResponse
from localoip.app.core.errors import InvalidInput


def test_json_tensors_decode_nested_data_flat():
    body = json.dumps(
        {
            "inputs": [
                {"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [[1, 2], [3, 4.5]]},
                {"name": "s", "shape": [2], "datatype": "BYTES", "data": ["a", "é"]},
            ]
        }
    ).encode()
    _, tensors = decode_request(body)
    np.testing.assert_array_equal(tensors["x"].values, np.array([1, 2, 3, 4.5], dtype=np.float32))
    assert tensors["s"].strings() == ["a", "é"]


def test_binary_tensors_decode_in_order_after_the_json_header():
    floats = np.array([1.5, -2.0, 3.25], dtype="<f4").tobytes()
    strings = b"".join(struct.pack("<I", len(s)) + s for s in (b"hi", b"", b"there"))
    head = json.dumps(
        {
            "inputs": [
                {
                    "name": "f",
                    "shape": [3],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": len(floats)},
                },
                {
                    "name": "s",
                    "shape": [3],
                    "datatype": "BYTES",
                    "parameters": {"binary_data_size": len(strings)},
                },
            ]
        }
    ).encode()
    _, tensors = decode_request(head + floats + strings, str(len(head)))
    assert tensors["f"].values.tolist() == [1.5, -2.0, 3.25]
    assert tensors["s"].strings() == ["hi", "", "there"]


def test_partial_fp32_element_is_rejected():
    head = json.dumps(
        {
            "inputs": [
                {
                    "name": "f",
                    "shape": [1],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": 3},
                }
            ]
        }
    ).encode()
    with pytest.raises(InvalidInput, match="whole number of FP32"):
        decode_request(head + b"abc", str(len(head)))


def test_numbers_that_do_not_fit_the_datatype_are_rejected():
    body = json.dumps({"inputs": [{"name": "u", "shape": [1], "datatype": "UINT8", "data": [300]}]})
    with pytest.raises(InvalidInput, match="does not fit UINT8"):
        decode_request(body.encode())


def test_json_response_encodes_bytes_as_base64_and_arrays_flat():
    outputs = [
        Output("text", "BYTES", [1], ["plain"]),
        Output("image", "BYTES", [1], [b"\x89PNG"]),
        Output("embedding", "FP32", [2, 2], np.array([[1, 2], [3, 4]], dtype=np.float32)),
    ]
    body, headers = encode_response(InferenceResponse(model_name="m", outputs=[]), outputs, set())
    assert headers == {"content-type": "application/json"}
    data = {o["name"]: o for o in json.loads(body)["outputs"]}
    assert data["text"]["data"] == ["plain"]
    assert base64.b64decode(data["image"]["data"][0]) == b"\x89PNG"
    assert data["embedding"]["data"] == [1.0, 2.0, 3.0, 4.0] and data["embedding"]["shape"] == [
        2,
        2,
    ]


def test_binary_response_round_trips_through_the_request_decoder():
    """Encoded outputs, read back as if they were inputs, give the same values."""
    vectors = np.arange(6, dtype=np.float32).reshape(2, 3)
    outputs = [
        Output("image", "BYTES", [2], [b"one", b"\x00two"]),
        Output("v", "FP32", [2, 3], vectors),
    ]
    body, headers = encode_response(
        InferenceResponse(model_name="m", outputs=[]), outputs, {"image", "v"}
    )
    head = json.loads(body[: int(headers[HEADER_LENGTH])])
    as_request = json.dumps(
        {
            "inputs": [
                {
                    "name": o["name"],
                    "shape": o["shape"],
                    "datatype": o["datatype"],
                    "parameters": o["parameters"],
                }
                for o in head["outputs"]
            ]
        }
    ).encode()
    _, tensors = decode_request(
        as_request + body[int(headers[HEADER_LENGTH]) :], str(len(as_request))
    )
    assert tensors["image"].values == [b"one", b"\x00two"]
    np.testing.assert_array_equal(tensors["v"].values.reshape(2, 3), vectors)


def test_requested_outputs_choose_and_default_to_binary_when_asked():
    from localoip.app.api.oip.types import InferenceRequest, RequestOutput

    available = [Output("a", "BYTES", [1], ["x"]), Output("b", "BYTES", [1], ["y"])]
    everything = InferenceRequest(inputs=[], parameters={"binary_data_output": True})
    assert binary_outputs(everything, available) == (available, {"a", "b"})
    some = InferenceRequest(
        inputs=[], outputs=[RequestOutput(name="b", parameters={"binary_data": True})]
    )
    assert binary_outputs(some, available) == ([available[1]], {"b"})
    wrong = InferenceRequest(inputs=[], outputs=[RequestOutput(name="c")])
    with pytest.raises(InvalidInput, match="unknown output 'c'"):
        binary_outputs(wrong, available)
