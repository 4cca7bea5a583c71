"""The edge on the wire of a real server: requests httpx cannot make (no Host, two Hosts),
curl, and tritonclient's compressed bodies."""

from __future__ import annotations

import json
import socket
import subprocess

import numpy as np
import pytest
import tritonclient.http as triton

EMBED = {"model": "tiny-embed", "input": ["a cat", "a kitten"]}


def raw_request(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_a_request_without_host_is_refused(server):
    reply = raw_request(server.port, b"GET /v1/models HTTP/1.0\r\n\r\n")
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 403")
    assert json.loads(body)["error"]["code"] == "host_not_allowed"


def test_two_host_headers_are_refused(server):
    request = (
        b"GET /v2/health/live HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\n"
        b"Connection: close\r\n\r\n"
    )
    assert raw_request(server.port, request).split(b" ")[1] in (b"400", b"403")


def test_curl_with_a_json_header_works_and_without_one_is_told_how(server):
    url = f"{server.url}/v1/embeddings"
    data = json.dumps(EMBED)
    good = subprocess.run(
        ["curl", "-s", url, "-H", "content-type: application/json", "-d", data],
        capture_output=True,
        check=True,
    )
    assert len(json.loads(good.stdout)["data"]) == 2
    bare = subprocess.run(["curl", "-s", url, "-d", data], capture_output=True, check=True)
    error = json.loads(bare.stdout)["error"]
    assert error["code"] == "unsupported_media_type"
    assert "-H 'content-type: application/json'" in error["message"]


def embed_input(binary: bool) -> triton.InferInput:
    tensor = triton.InferInput("input", [2], "BYTES")
    tensor.set_data_from_numpy(np.array([b"a cat", b"a kitten"], dtype=object), binary_data=binary)
    return tensor


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
@pytest.mark.parametrize("algorithm", ["gzip", "deflate"])
def test_tritonclient_compressed_requests_and_responses(server, binary, algorithm):
    client = triton.InferenceServerClient(server.host, network_timeout=120)
    plain = client.infer("tiny-embed", [embed_input(binary)]).as_numpy("embedding")
    compressed = client.infer(
        "tiny-embed",
        [embed_input(binary)],
        request_compression_algorithm=algorithm,
        response_compression_algorithm=algorithm,
    ).as_numpy("embedding")
    assert plain.shape == (2, 64)
    np.testing.assert_array_equal(compressed, plain)
