"""Schemathesis fuzzes the OIP data-plane and repository specs: no 5xx, responses conform."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.configs import tiny_chat
from support.paths import SHARED
from support.servers import Server, Servers

SPECS = SHARED / "specs"
pytestmark = pytest.mark.skipif(
    not SPECS.is_dir(), reason=f"the OIP specs are not here ({SPECS}); they live in ../shared/specs"
)


@pytest.fixture(scope="module")
def fuzz_server(servers: Servers, tiny_dir: Path) -> Iterator[Server]:
    """Its own server: the repository fuzzing unloads models."""
    with servers.alone(tiny_chat(tiny_dir)) as server:
        yield server


@pytest.mark.parametrize(
    "spec", ["mlserver-dataplane.fixed.yaml", "mlserver-model_repository.yaml"]
)
def test_no_server_errors_and_responses_match_the_spec(fuzz_server, tmp_path, spec):
    config = tmp_path / "schemathesis.toml"
    config.write_text('[parameters]\nmodel_name = "tiny-chat"\nmodel_version = "1"\n')
    cli = Path(sys.executable).with_name("schemathesis")
    result = subprocess.run(
        [
            cli,
            "--config-file",
            config,
            "run",
            SPECS / spec,
            "--url",
            fuzz_server.url,
            "--checks",
            "not_a_server_error,response_schema_conformance",
            "--max-examples",
            "25",
            "--workers",
            "1",
            "--seed",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,  # schemathesis keeps a cache in its working folder
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert fuzz_server.process.poll() is None
