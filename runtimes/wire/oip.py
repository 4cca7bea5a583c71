"""OIP tensor codec: tensors <-> JSON and binary-extension bytes, for serving and for calling.

The one place that knows how tensors travel. The server's request and response
framing (app/api/oip/codecs.py) and the remote OIP runtime's (encode_request,
decode_response here) both build on it; errors are InputErrors naming the tensor.
"""

from __future__ import annotations

import base64
import math
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec
import numpy as np
from localoip.runtimes.capabilities import ChatMessage, InputError

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
            raise InputError(f"input {self.name!r} must be BYTES, got {self.datatype}")
        try:
            return [value.decode("utf-8") for value in self.values]
        except UnicodeDecodeError:
            raise InputError(f"input {self.name!r} is not valid UTF-8 text") from None


@dataclass(frozen=True, slots=True)
class Output:
    """A tensor to send: BYTES elements as str or bytes (bytes are base64 in JSON), or an array."""

    name: str
    datatype: str
    shape: list[int]
    values: list[str] | list[bytes] | np.ndarray


class WireTensor(Protocol):
    """A tensor's JSON header as it arrives: a request input or a response output."""

    name: str
    shape: list[int]
    datatype: str
    parameters: dict[str, Any] | None
    data: Any


class _ResponseTensor(msgspec.Struct, kw_only=True):
    name: str
    shape: list[int]
    datatype: str
    parameters: dict[str, Any] | None = None
    data: Any = None


class _Response(msgspec.Struct, kw_only=True):
    outputs: list[_ResponseTensor]


def split_binary(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    """Split a body into its JSON header and its binary tensor data."""
    if header_length is None:
        return body, b""
    try:
        length = int(header_length)
    except ValueError:
        raise InputError(f"{HEADER_LENGTH} must be an integer, got {header_length!r}") from None
    if not 0 <= length <= len(body):
        raise InputError(f"{HEADER_LENGTH} is {length} but the body has only {len(body)} bytes")
    return body[:length], body[length:]


def _flatten(data: Any) -> list[Any]:
    if not isinstance(data, list):
        return [data]
    flat: list[Any] = []
    for item in data:
        flat.extend(_flatten(item))
    return flat


def decode_tensors(
    items: Iterable[WireTensor], binary: bytes, kind: str = "input"
) -> dict[str, Tensor]:
    """Decode each tensor's data, taking binary-extension data from `binary` in order.

    `kind` ("input" or "output") is how error messages name the tensors.
    """
    tensors: dict[str, Tensor] = {}
    offset = 0
    for item in items:
        if item.name in tensors:
            raise InputError(f"{kind} {item.name!r} is given twice")
        if item.datatype != "BYTES" and item.datatype not in NUMPY_TYPES:
            raise InputError(f"{kind} {item.name!r} has an unknown datatype {item.datatype!r}")
        if any(dim < 0 for dim in item.shape):
            raise InputError(f"{kind} {item.name!r} has a negative dimension in shape {item.shape}")
        count = math.prod(item.shape)
        parameters = item.parameters or {}
        size = parameters.get("binary_data_size")
        if size is not None:
            if not isinstance(size, int) or isinstance(size, bool) or size < 0:
                raise InputError(f"{kind} {item.name!r}: binary_data_size must be an integer ≥ 0")
            if offset + size > len(binary):
                raise InputError(
                    f"{kind} {item.name!r} declares {size} bytes of binary data but only "
                    f"{len(binary) - offset} remain after the JSON header"
                )
            values = _decode_binary(kind, item.name, item.datatype, binary[offset : offset + size])
            offset += size
        elif item.data is None:
            raise InputError(f"{kind} {item.name!r} has no 'data' and no binary_data_size")
        else:
            values = _decode_json(kind, item.name, item.datatype, _flatten(item.data))
        if len(values) != count:
            raise InputError(
                f"{kind} {item.name!r} has shape {item.shape} ({count} elements) "
                f"but its data has {len(values)}"
            )
        tensors[item.name] = Tensor(item.name, item.datatype, item.shape, values, parameters)
    if offset != len(binary):
        raise InputError(
            f"{len(binary) - offset} bytes of binary data follow the JSON header "
            f"that no {kind}'s binary_data_size accounts for"
        )
    return tensors


def _decode_json(kind: str, name: str, datatype: str, flat: list[Any]) -> list[bytes] | np.ndarray:
    if datatype == "BYTES":
        if not all(isinstance(v, str) for v in flat):
            raise InputError(f"{kind} {name!r} is BYTES, so its data must be strings")
        return [v.encode("utf-8") for v in flat]
    if not all(isinstance(v, int | float) and not isinstance(v, str) for v in flat):
        raise InputError(f"{kind} {name!r} is {datatype}, so its data must be numbers")
    try:
        return np.asarray(flat, dtype=NUMPY_TYPES[datatype])
    except (OverflowError, ValueError) as exc:
        raise InputError(f"{kind} {name!r}: data does not fit {datatype}: {exc}") from None


def _decode_binary(kind: str, name: str, datatype: str, raw: bytes) -> list[bytes] | np.ndarray:
    if datatype == "BYTES":
        values, pos = [], 0
        while pos < len(raw):
            if pos + 4 > len(raw):
                raise InputError(f"{kind} {name!r}: binary BYTES element is missing its length")
            (length,) = struct.unpack_from("<I", raw, pos)
            pos += 4
            if pos + length > len(raw):
                raise InputError(
                    f"{kind} {name!r}: binary BYTES element says {length} bytes, "
                    f"only {len(raw) - pos} remain"
                )
            values.append(raw[pos : pos + length])
            pos += length
        return values
    dtype = np.dtype(NUMPY_TYPES[datatype]).newbyteorder("<")
    if len(raw) % dtype.itemsize:
        raise InputError(
            f"{kind} {name!r}: {len(raw)} bytes is not a whole number of {datatype} elements"
        )
    return np.frombuffer(raw, dtype=dtype)


def json_data(output: Output) -> list[Any]:
    """A tensor's elements as JSON data: BYTES as text, raw bytes as base64."""
    if output.datatype == "BYTES":
        return [
            v if isinstance(v, str) else base64.b64encode(v).decode("ascii") for v in output.values
        ]
    return np.asarray(output.values).reshape(-1).tolist()


def binary_data(output: Output) -> bytes:
    """A tensor's elements in the binary extension: BYTES length-prefixed, numbers little-endian."""
    if output.datatype == "BYTES":
        return b"".join(
            struct.pack("<I", len(b)) + b
            for b in (v.encode("utf-8") if isinstance(v, str) else v for v in output.values)
        )
    dtype = np.dtype(NUMPY_TYPES[output.datatype]).newbyteorder("<")
    return np.ascontiguousarray(output.values, dtype=dtype).tobytes()


def chat_inputs(messages: list[ChatMessage]) -> list[Output]:
    """A chat as Seldon Core 2's tensors: `role`, `content` and `type`, BYTES [N], one element
    per message. Each content goes as it was sent, and its `type` says "text", so a model
    that reads `content` gets the words, never JSON quotes (see docs/oip.md)."""
    n = len(messages)
    return [
        Output("role", "BYTES", [n], [m.role for m in messages]),
        Output("content", "BYTES", [n], [m.content or "" for m in messages]),
        Output("type", "BYTES", [n], ["text"] * n),
    ]


def _json_values(name: str, tensor: Tensor) -> list[Any]:
    """A decoded tensor's elements as JSON data; BYTES must be UTF-8 text to travel in JSON."""
    if tensor.datatype != "BYTES":
        return np.asarray(tensor.values).tolist()
    try:
        return [value.decode("utf-8") for value in tensor.values]
    except UnicodeDecodeError:
        raise InputError(
            f"input {name!r} holds bytes that are not UTF-8 text, and the upstream takes "
            "JSON tensors only (it lists no binary_tensor_data extension)",
            name,
        ) from None


def json_request(body: bytes, header_length: str | None) -> bytes:
    """An infer request as plain JSON, for an upstream without the binary tensor extension:
    binary inputs become JSON `data` and the extension's parameters (`binary_data_size`,
    `binary_data_output`, an output's `binary_data`) are dropped; everything else (id,
    parameters, outputs) is kept. A JSON request without them is returned as it is, unread:
    the upstream judges it, as it would sent straight.

    Raises InputError for bad framing or BYTES that are not text."""
    if header_length is None and b"binary_data" not in body:
        return body
    head, binary = split_binary(body, header_length)
    try:
        request = msgspec.json.decode(head)
        items = msgspec.convert(request["inputs"], list[_ResponseTensor])
    except (msgspec.DecodeError, msgspec.ValidationError, TypeError, KeyError) as exc:
        raise InputError(f"malformed inference request: {exc}") from None
    parameters = request.get("parameters") or {}
    outputs = [o for o in request.get("outputs") or [] if isinstance(o, dict)]
    asks = "binary_data_output" in parameters or any(
        "binary_data" in (o.get("parameters") or {}) for o in outputs
    )
    if header_length is None and not asks:
        return body
    tensors = decode_tensors(items, binary)
    for raw, item in zip(request["inputs"], items, strict=True):
        kept = {k: v for k, v in (item.parameters or {}).items() if k != "binary_data_size"}
        raw.pop("parameters", None)
        if kept:
            raw["parameters"] = kept
        raw["data"] = _json_values(item.name, tensors[item.name])
    parameters.pop("binary_data_output", None)
    for output in outputs:
        (output.get("parameters") or {}).pop("binary_data", None)
    return msgspec.json.encode(request)


def encode_request(
    inputs: list[Output], parameters: dict[str, Any], binary: bool = False
) -> tuple[bytes, dict[str, str]]:
    """An infer request body and its headers; `binary` sends inputs as binary-extension data
    and asks for binary outputs, as tritonclient does."""
    blobs = [binary_data(i) for i in inputs] if binary else []
    wire = [
        {
            "name": i.name,
            "shape": i.shape,
            "datatype": i.datatype,
            **(
                {"parameters": {"binary_data_size": len(blobs[n])}}
                if binary
                else {"data": json_data(i)}
            ),
        }
        for n, i in enumerate(inputs)
    ]
    request: dict[str, Any] = {"inputs": wire}
    if parameters or binary:
        request["parameters"] = {**parameters, **({"binary_data_output": True} if binary else {})}
    head = msgspec.json.encode(request)
    if not binary:
        return head, {"content-type": "application/json"}
    return head + b"".join(blobs), {
        "content-type": "application/octet-stream",
        HEADER_LENGTH: str(len(head)),
    }


def decode_response(body: bytes, header_length: str | None = None) -> dict[str, Tensor]:
    """The output tensors of an infer response, JSON or binary."""
    head, binary = split_binary(body, header_length)
    try:
        response = msgspec.json.decode(head, type=_Response)
    except msgspec.DecodeError as exc:
        raise InputError(f"malformed inference response: {exc}") from None
    return decode_tensors(response.outputs, binary, "output")
