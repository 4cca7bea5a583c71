"""Schemathesis fuzzes our OpenAI routes against OpenAI's own spec: no 5xx, responses conform."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.configs import MINILM, tiny_chat, tiny_sd
from support.paths import SHARED
from support.servers import Server, Servers

SPEC = SHARED / "specs" / "openai-openapi.yaml"

OPERATIONS = [
    "createChatCompletion",
    "createCompletion",
    "createEmbedding",
    "createImage",
    "listModels",
    "retrieveModel",
    "listChatCompletions",
    "getChatCompletion",
    "updateChatCompletion",
    "deleteChatCompletion",
    "getChatCompletionMessages",
    "createResponse",
    "getResponse",
    "deleteResponse",
    "cancelResponse",
    "listInputItems",
    "Getinputtokencounts",
    "Compactconversation",
]
"""The spec's operations that localoip serves at /v1; the spec has some 200 others."""

HOOKS = """
import copy
import re

import schemathesis

MODELS = {
    "/chat/completions": "tiny-chat",
    "/completions": "tiny-chat",
    "/embeddings": "minilm",
    "/images/generations": "tiny-sd",
    "/responses": "tiny-chat",
    "/responses/input_tokens": "tiny-chat",
    "/responses/compact": "tiny-chat",
}
MAX_TOKENS = 16
MAX_ITEMS = 8
MAX_PIXELS = 64 * 64
SIZE = re.compile(r"([0-9]+)x([0-9]+)")


# Every generated body names a served model, and asks for little work. A config's `body.*`
# overrides reach the fuzzing phase only; a hook reaches the examples, coverage and stateful
# phases too. A model that is missing or not a string stays as generated: the server rejects it.
@schemathesis.hook
def before_call(context, case, kwargs):
    body = case.body
    if not isinstance(body, dict):
        return
    model = MODELS.get(case.operation.path)
    if model is not None and isinstance(body.get("model"), str):
        body["model"] = model
    for key in ("max_tokens", "max_completion_tokens", "max_output_tokens"):
        value = body.get(key)
        if type(value) is int and value > MAX_TOKENS:
            body[key] = MAX_TOKENS
    # 2048 inputs, the spec's maximum, take MiniLM on one thread some 15 s.
    for key in ("input", "prompt"):
        value = body.get(key)
        if isinstance(value, list) and len(value) > MAX_ITEMS:
            body[key] = value[:MAX_ITEMS]
    # The tiny pipeline's VAE upscales by 2 only, so a 256x256 image already takes a minute.
    size = body.get("size")
    match = SIZE.fullmatch(size) if isinstance(size, str) else None
    if match and int(match[1]) * int(match[2]) > MAX_PIXELS:
        body["size"] = "64x64"


@schemathesis.hook
def before_load_schema(context, raw_schema):
    schemas = raw_schema["components"]["schemas"]
    # Spec-side, not ours: the spec types `Embedding.embedding` as a list of floats only, though
    # its own request documents `encoding_format: "base64"`, for which OpenAI (and localoip)
    # send a string.
    embedding = schemas["Embedding"]["properties"]["embedding"]
    items = {key: embedding.pop(key) for key in ("type", "items")}
    embedding["anyOf"] = [items, {"type": "string", "contentEncoding": "base64"}]
    # Spec-side too: a stored completion's messages are the request's (user, system, tool ...),
    # as the spec's own example shows ("role": "user"), but their schema is the assistant
    # reply's, whose role can only be "assistant".
    listed = schemas["ChatCompletionMessageList"]["properties"]["data"]["items"]["allOf"]
    message = copy.deepcopy(schemas["ChatCompletionResponseMessage"])
    message["properties"]["role"] = {"type": "string"}
    listed[0] = message
    # Spec-side too: some unions (ItemField, the items of a compaction, of a reply's tool_calls)
    # name a discriminator with no mapping, which by OpenAPI's rule makes the schema names
    # ("CompactionBody") the values; the values are each variant's `type` constant
    # ("compaction", "function"), so map those, wherever the union sits in the tree.
    for union in unions(schemas):
        discriminator = union["discriminator"]
        found = mapping(schemas, union, discriminator["propertyName"])
        if found:
            discriminator["mapping"] = found
    # Spec-side too: DELETE /responses/{id} and POST /responses/{id}/cancel document their 404
    # as a bare Error, where OpenAI, its SDKs and the spec's other routes wrap it in "error".
    for operations in raw_schema["paths"].values():
        for operation in operations.values():
            replies = operation.get("responses", {}) if isinstance(operation, dict) else {}
            for reply in replies.values():
                body = reply.get("content", {}).get("application/json", {})
                if body.get("schema") == {"$ref": "#/components/schemas/Error"}:
                    body["schema"] = {"$ref": "#/components/schemas/ErrorResponse"}


def unions(node):
    if isinstance(node, dict):
        discriminator = node.get("discriminator")
        if isinstance(discriminator, dict) and "mapping" not in discriminator:
            yield node
        children = node.values()
    elif isinstance(node, list):
        children = node
    else:
        return
    for child in children:
        yield from unions(child)


def mapping(schemas, union, name):
    found = {}
    for variant in union.get("oneOf", union.get("anyOf", [])):
        ref = variant.get("$ref", "")
        enum = schemas.get(ref.rsplit("/", 1)[-1], {}).get("properties", {}).get(name, {})
        values = enum.get("enum", []) + ([enum["const"]] if "const" in enum else [])
        for value in values:
            found[value] = ref
    return found
"""
"""A schemathesis hook module, written next to the config that names it."""

SCHEMATHESIS_CONFIG = """
hooks = '{hooks}'

# GET /models/{{model}} asks for a model that exists.
[parameters]
"path.model" = "tiny-chat"

# The routes on one stored object read one that exists; each delete has one of its own.
[[operations]]
include-operation-id = ["getChatCompletion", "updateChatCompletion", "getChatCompletionMessages"]
parameters = {{ "path.completion_id" = "{completion}" }}

[[operations]]
include-operation-id = "deleteChatCompletion"
parameters = {{ "path.completion_id" = "{doomed_completion}" }}

[[operations]]
include-operation-id = ["getResponse", "cancelResponse", "listInputItems"]
parameters = {{ "path.response_id" = "{response}" }}

[[operations]]
include-operation-id = "deleteResponse"
parameters = {{ "path.response_id" = "{doomed_response}" }}

# The Responses bodies are the spec's largest: its coverage phase makes some 20,000 cases of
# them (7 minutes here), so these are fuzzed with more examples instead.
[[operations]]
include-operation-id = ["createResponse", "Getinputtokencounts", "Compactconversation"]
phases.coverage.enabled = false
generation.max-examples = 60
"""

pytestmark = pytest.mark.skipif(
    not SPEC.is_file(), reason=f"the OpenAI spec is not here ({SPEC}); it lives in ../shared/specs"
)


@pytest.fixture(scope="module")
def openai_server(servers: Servers, tiny_dir: Path) -> Iterator[Server]:
    """Its own server with a chat, an embedding and an image model."""
    with servers.alone(tiny_chat(tiny_dir) + MINILM + tiny_sd(tiny_dir)) as server:
        yield server


def stored_objects(server: Server) -> dict[str, str]:
    """Ids of stored objects for the routes that read, change or delete one: two chat
    completions, and two responses, one of them a finished background one (cancel answers 200)."""
    chat = {"model": "tiny-chat", "messages": [{"role": "user", "content": "hi"}]}
    short = {"max_tokens": 4, "store": True}
    with httpx.Client(base_url=f"{server.url}/v1", timeout=60) as http:
        ids = {
            name: http.post("/chat/completions", json={**chat, **short}).json()["id"]
            for name in ("completion", "doomed_completion")
        }
        body = {"model": "tiny-chat", "input": "hi", "max_output_tokens": 4}
        ids["doomed_response"] = http.post("/responses", json=body).json()["id"]
        response = http.post("/responses", json={**body, "background": True}).json()
        while response["status"] in ("queued", "in_progress"):
            time.sleep(0.1)
            response = http.get(f"/responses/{response['id']}").json()
        ids["response"] = response["id"]
    return ids


def test_openai_routes_have_no_server_errors_and_match_the_spec(
    openai_server: Server, tmp_path: Path
) -> None:
    hooks = tmp_path / "hooks.py"
    hooks.write_text(HOOKS)
    config = tmp_path / "schemathesis.toml"
    config.write_text(SCHEMATHESIS_CONFIG.format(hooks=hooks, **stored_objects(openai_server)))
    cli = Path(sys.executable).with_name("schemathesis")
    command: list[str | Path] = [
        cli,
        "--config-file",
        config,
        "run",
        SPEC,
        "--url",
        f"{openai_server.url}/v1",
        *(arg for op in OPERATIONS for arg in ("--include-operation-id", op)),
        "--checks",
        "not_a_server_error,response_schema_conformance",
        "--max-examples",
        "20",
        "--workers",
        "1",
        "--seed",
        "1",
        "--generation-database",
        "none",
        "--request-timeout",
        "60",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
    assert openai_server.process.poll() is None
