"""OIP request and response framing for the server, over the tensor codec in runtimes/.

runtimes/wire/oip.py knows how tensors travel, for serving and for calling OIP
servers; this module frames whole requests and responses with the wire types,
and reports bad tensors as InvalidInput.
"""

from __future__ import annotations

import msgspec
from localoip.app.api.oip.types import InferenceRequest, InferenceResponse, ResponseOutput
from localoip.app.core.errors import InvalidInput
from localoip.runtimes.capabilities import InputError
from localoip.runtimes.wire.oip import (
    HEADER_LENGTH,
    Output,
    Tensor,
    binary_data,
    decode_tensors,
    json_data,
    split_binary,
)


def decode_request(
    body: bytes, header_length: str | None = None
) -> tuple[InferenceRequest, dict[str, Tensor]]:
    """Parse an infer request body (JSON, or JSON plus binary tensor data) and its inputs."""
    try:
        head, binary = split_binary(body, header_length)
        if not head.strip():
            raise InvalidInput(
                "the request body is empty; expected an inference request JSON object"
            )
        try:
            request = msgspec.json.decode(head, type=InferenceRequest)
        except msgspec.DecodeError as exc:
            raise InvalidInput(f"malformed inference request: {exc}") from None
        return request, decode_tensors(request.inputs, binary)
    except InputError as exc:
        raise InvalidInput(str(exc), exc.param, exc.code) from None


def encode_response(
    response: InferenceResponse, outputs: list[Output], binary: set[str]
) -> tuple[bytes, dict[str, str]]:
    """Serialise a response; outputs named in `binary` go as binary-extension data."""
    blobs: list[bytes] = []
    wire: list[ResponseOutput] = []
    for out in outputs:
        if out.name in binary:
            blob = binary_data(out)
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
                    name=out.name, datatype=out.datatype, shape=out.shape, data=json_data(out)
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
