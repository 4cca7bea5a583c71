"""The exported Ray Serve app, run on a one-machine Ray cluster with 2 replicas that both serve."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from localoip.app.cli.main import main
from support.servers import free_port

pytestmark = pytest.mark.slow

CONFIG = """
[[models]]
name = "tiny"
runtime = "llama-cpp"
source = "{tiny}/tiny.gguf"
[models.options]
n_ctx = 256
threads = 1
"""

DRIVER = """
import sys

import ray
from ray import serve

sys.path.insert(0, sys.argv[1])
import localoip_serve_app

ray.init(
    num_cpus=2,
    include_dashboard=False,
    _node_ip_address="127.0.0.1",
    object_store_memory=100 * 1024 * 1024,
)
serve.start(http_options={"host": "127.0.0.1", "port": int(sys.argv[2])})
serve.run(localoip_serve_app.app, name="localoip", route_prefix="/")
print("deployed", flush=True)
sys.stdin.read()  # until the test closes stdin
serve.shutdown()
ray.shutdown()
"""


def test_two_replicas_of_the_exported_app_both_serve(tiny_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray.serve", reason="ray[serve] is not installed")
    config = tmp_path / "models.toml"
    config.write_text(CONFIG.format(tiny=tiny_dir))
    out = tmp_path / "ray-app"
    replicas_flags = ["--min-replicas=2", "--max-replicas=2"]
    main(["export", "ray", "--config", str(config), "--out", str(out), *replicas_flags])
    port = free_port()
    env = {
        **os.environ,
        "RAY_USAGE_STATS_ENABLED": "0",
        # A one-machine cluster on loopback only: Ray otherwise binds the machine's own
        # address, and talks to it.
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        "PYTHONPATH": os.pathsep.join([str(out), os.environ.get("PYTHONPATH", "")]),
    }
    log = tmp_path / "ray.log"
    with log.open("wb") as sink:
        driver = subprocess.Popen(
            [sys.executable, "-c", DRIVER, str(out), str(port)],
            stdin=subprocess.PIPE,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=out,
        )
    try:
        replicas: set[str] = set()
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            for _ in range(1200):  # bounded by attempts
                assert driver.poll() is None, log.read_text(errors="replace")
                try:
                    response = http.get("/v2/models/tiny/ready")
                except httpx.TransportError:
                    time.sleep(0.1)
                    continue
                if response.status_code == 200:
                    replicas.add(response.headers["x-replica"])
                    if len(replicas) == 2:
                        break
                else:
                    time.sleep(0.1)
            assert len(replicas) == 2, log.read_text(errors="replace")
            chat = http.post(
                "/v1/chat/completions",
                json={
                    "model": "tiny",
                    "messages": [{"role": "user", "content": "hi"}],
                    "max_tokens": 4,
                },
            )
            assert chat.status_code == 200, chat.text
            assert chat.json()["usage"]["completion_tokens"] == 4
    finally:
        assert driver.stdin is not None
        driver.stdin.close()
        try:
            driver.wait(timeout=60)
        except subprocess.TimeoutExpired:
            driver.kill()
            driver.wait()
