"""OIP tensor codecs: JSON and binary-extension tensors <-> Python values, both directions.

The one place that knows how tensors travel: used to decode requests and encode
responses when serving, and by anything that calls an OIP server.
"""

from __future__ import annotations

import base64
import math
import struct
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np
from localoip.app.errors import InvalidInput
from localoip.app.oip.types import InferenceRequest, InferenceResponse, ResponseOutput

HEADER_LENGTH = "Inference-Header-Content-Length"

NUMPY_TYPES = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
}


@dataclass(frozen=True, slots=True)
class Tensor:
    """A decoded tensor: BYTES as a list of bytes, numbers as a flat numpy array."""

    name: str
    datatype: str
    shape: list[int]
    values: list[bytes] | np.ndarray
    parameters: dict[str, Any]

    def strings(self) -> list[str]:
        """The elements of a BYTES tensor as text."""
        if self.datatype != "BYTES":
            raise InvalidInput(f"input {self.name!r} must be BYTES, got {self.datatype}")
        try:
            return [value.decode("utf-8") for value in self.values]
        except UnicodeDecodeError:
            raise InvalidInput(f"input {self.name!r} is not valid UTF-8 text") from None


def _element_count(shape: list[int], name: str) -> int:
    if any(dim < 0 for dim in shape):
        raise InvalidInput(f"input {name!r} has a negative dimension in shape {shape}")
    return math.prod(shape)


def _flatten(data: Any) -> list[Any]:
    if not isinstance(data, list):
        return [data]
    flat: list[Any] = []
    for item in data:
        flat.extend(_flatten(item))
    return flat


def _split_binary(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    """Split a request body into its JSON header and its binary tensor data."""
    if header_length is None:
        return body, b""
    try:
        length = int(header_length)
    except ValueError:
        raise InvalidInput(f"{HEADER_LENGTH} must be an integer, got {header_length!r}") from None
    if not 0 <= length <= len(body):
        raise InvalidInput(f"{HEADER_LENGTH} is {length} but the body has only {len(body)} bytes")
    return body[:length], body[length:]


def decode_request(
    body: bytes, header_length: str | None = None
) -> tuple[InferenceRequest, dict[str, Tensor]]:
    """Parse an infer request body (JSON, or JSON plus binary tensor data) and its inputs."""
    head, binary = _split_binary(body, header_length)
    if not head.strip():
        raise InvalidInput("the request body is empty; expected an inference request JSON object")
    try:
        request = msgspec.json.decode(head, type=InferenceRequest)
    except msgspec.DecodeError as exc:
        raise InvalidInput(f"malformed inference request: {exc}") from None
    return request, _decode_inputs(request, binary)


def _decode_inputs(request: InferenceRequest, binary: bytes) -> dict[str, Tensor]:
    """Decode every input's data, taking binary-extension data from `binary` in order."""
    tensors: dict[str, Tensor] = {}
    offset = 0
    for item in request.inputs:
        if item.name in tensors:
            raise InvalidInput(f"input {item.name!r} is given twice")
        count = _element_count(item.shape, item.name)
        size = item.parameters.get("binary_data_size")
        if size is not None:
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise InvalidInput(f"input {item.name!r}: binary_data_size must be an integer ≥ 0")
            if offset + size > len(binary):
                raise InvalidInput(
                    f"input {item.name!r} declares {size} bytes of binary data but only "
                    f"{len(binary) - offset} remain after the JSON header"
                )
            values = _decode_binary(item.name, item.datatype, binary[offset : offset + size])
            offset += size
        elif item.data is None:
            raise InvalidInput(f"input {item.name!r} has no 'data' and no binary_data_size")
        else:
            values = _decode_json(item.name, item.datatype, _flatten(item.data))
        if len(values) != count:
            raise InvalidInput(
                f"input {item.name!r} has shape {item.shape} ({count} elements) "
                f"but its data has {len(values)}"
            )
        tensors[item.name] = Tensor(item.name, item.datatype, item.shape, values, item.parameters)
    if offset != len(binary):
        raise InvalidInput(
            f"{len(binary) - offset} bytes of binary data follow the JSON header "
            "that no input's binary_data_size accounts for"
        )
    return tensors


def _decode_json(name: str, datatype: str, flat: list[Any]) -> list[bytes] | np.ndarray:
    if datatype == "BYTES":
        if not all(isinstance(v, str) for v in flat):
            raise InvalidInput(f"input {name!r} is BYTES, so its data must be strings")
        return [v.encode("utf-8") for v in flat]
    if not all(isinstance(v, int | float) and not isinstance(v, str) for v in flat):
        raise InvalidInput(f"input {name!r} is {datatype}, so its data must be numbers")
    try:
        return np.asarray(flat, dtype=NUMPY_TYPES[datatype])
    except (OverflowError, ValueError) as exc:
        raise InvalidInput(f"input {name!r}: data does not fit {datatype}: {exc}") from None


def _decode_binary(name: str, datatype: str, raw: bytes) -> list[bytes] | np.ndarray:
    if datatype == "BYTES":
        values, pos = [], 0
        while pos < len(raw):
            if pos + 4 > len(raw):
                raise InvalidInput(f"input {name!r}: binary BYTES element is missing its length")
            (length,) = struct.unpack_from("<I", raw, pos)
            pos += 4
            if pos + length > len(raw):
                raise InvalidInput(
                    f"input {name!r}: binary BYTES element says {length} bytes, "
                    f"only {len(raw) - pos} remain"
                )
            values.append(raw[pos : pos + length])
            pos += length
        return values
    dtype = np.dtype(NUMPY_TYPES[datatype]).newbyteorder("<")
    if len(raw) % dtype.itemsize:
        raise InvalidInput(
            f"input {name!r}: {len(raw)} bytes is not a whole number of {datatype} elements"
        )
    return np.frombuffer(raw, dtype=dtype)


@dataclass(frozen=True, slots=True)
class Output:
    """A result tensor: BYTES elements as str or bytes (bytes are base64 in JSON), or an array."""

    name: str
    datatype: str
    shape: list[int]
    values: list[str] | list[bytes] | np.ndarray


def _to_bytes(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value


def _json_data(output: Output) -> list[Any]:
    if output.datatype == "BYTES":
        return [
            v if isinstance(v, str) else base64.b64encode(v).decode("ascii") for v in output.values
        ]
    return np.asarray(output.values).reshape(-1).tolist()


def _binary_data(output: Output) -> bytes:
    if output.datatype == "BYTES":
        return b"".join(
            struct.pack("<I", len(b)) + b for b in (_to_bytes(v) for v in output.values)
        )
    dtype = np.dtype(NUMPY_TYPES[output.datatype]).newbyteorder("<")
    return np.ascontiguousarray(output.values, dtype=dtype).tobytes()


def encode_response(
    response: InferenceResponse, outputs: list[Output], binary: set[str]
) -> tuple[bytes, dict[str, str]]:
    """Serialise a response; outputs named in `binary` go as binary-extension data."""
    blobs: list[bytes] = []
    wire: list[ResponseOutput] = []
    for out in outputs:
        if out.name in binary:
            blob = _binary_data(out)
            blobs.append(blob)
            wire.append(
                ResponseOutput(
                    name=out.name,
                    datatype=out.datatype,
                    shape=out.shape,
                    parameters={"binary_data_size": len(blob)},
                )
            )
        else:
            wire.append(
                ResponseOutput(
                    name=out.name, datatype=out.datatype, shape=out.shape, data=_json_data(out)
                )
            )
    response.outputs = wire
    head = msgspec.json.encode(response)
    if not blobs:
        return head, {"content-type": "application/json"}
    return head + b"".join(blobs), {
        "content-type": "application/octet-stream",
        HEADER_LENGTH: str(len(head)),
    }


def binary_outputs(
    request: InferenceRequest, available: list[Output]
) -> tuple[list[Output], set[str]]:
    """The outputs a request asked for, and which of them go as binary data.

    With no `outputs` named, every output is returned; `binary_data_output` in the
    request parameters (tritonclient's default) makes them binary.
    """
    default = request.parameters.get("binary_data_output") is True
    if not request.outputs:
        return available, {o.name for o in available} if default else set()
    by_name = {o.name: o for o in available}
    chosen, binary = [], set()
    for wanted in request.outputs:
        if wanted.name not in by_name:
            raise InvalidInput(
                f"unknown output {wanted.name!r}; this request gives: {sorted(by_name)}"
            )
        chosen.append(by_name[wanted.name])
        if wanted.parameters.get("binary_data", default) is True:
            binary.add(wanted.name)
    return chosen, binary
