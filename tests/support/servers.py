"""Real `localoip serve` processes on free ports: start, wait, stop, and a pool that shares one
server among the tests that ask for the same config, arguments and environment."""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from support.configs import written
from support.paths import LOCALOIP, REPO
from support.pool import Shared


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
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
        """host:port, as tritonclient and LOCALOIP_HOST take it."""
        return f"127.0.0.1:{self.port}"

    @property
    def folder(self) -> Path:
        """The folder of its log, and of its models.toml when the pool wrote one."""
        return self.log.parent

    def logs(self) -> str:
        """Its log so far."""
        return self.log.read_text(errors="replace")


def start_server(
    config: Path | None,
    log: Path,
    wait_ready: bool = True,
    timeout: float = 600,
    args: tuple[str, ...] = (),
    localoip: Path = LOCALOIP,
    env: dict[str, str] | None = None,
    port: int | None = None,
) -> Server:
    """Start `localoip serve --config CONFIG --port PORT ARGS` (this venv's `localoip`, or the
    one given) and wait for it: until /v2/health/ready answers 200, or /v2/health/live when
    `wait_ready` is false. Without a config, `args` is the whole command line after `localoip`
    and must hold `port`'s number (an exported manifest's command, say).

    Each local model loads in its own runner process, so a config with several torch models
    imports torch once per runner; on a busy shared 2-core machine that took minutes.
    It runs offline (HF_HUB_OFFLINE=1) unless `env` says otherwise. Raises RuntimeError, with
    the server's log, when it exits or is not up within `timeout` seconds."""
    port = port or free_port()
    serve = ["serve", "--config", str(config), "--port", str(port)] if config else []
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(localoip), *serve, *args], stdout=out, stderr=subprocess.STDOUT, env=env
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
    """SIGTERM, then SIGKILL after 20 s; returns once the process is gone."""
    if server.process.poll() is not None:
        return
    server.process.terminate()
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@contextmanager
def serving(config: Path | None, log: Path, **options: Any) -> Iterator[Server]:
    """start_server's server, stopped at the end of the block."""
    server = start_server(config, log, **options)
    try:
        yield server
    finally:
        stop_server(server)


class Servers:
    """The real servers of one test session.

    `shared` hands every fixture that asks for the same config text, arguments and environment
    the same server (support/pool.py keeps the last two nobody holds for a later ask). `own`
    starts a server for one test to kill, restart or change files under; whatever is still
    running at `close` is stopped."""

    def __init__(self, folder: Path) -> None:
        self.root = folder
        self.pool: Shared[Server] = Shared()
        self.owned: list[Server] = []

    def folder(self, name: str = "server") -> Path:
        """A new empty folder for a server's models.toml, log and model files."""
        return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.root))

    def config(self, text: str, name: str = "server") -> Path:
        """`text` written as models.toml in a new folder."""
        return written(text, self.root, name)

    def log_for(self, config: Path, name: str) -> Path:
        """Beside the config, unless the config is the repository's own: then in a new folder."""
        if config.resolve().is_relative_to(REPO):
            return self.folder("log") / name
        return config.parent / name

    @contextmanager
    def shared(
        self, config: str | Path, *, args: tuple[str, ...] = (), env: dict[str, str] | None = None
    ) -> Iterator[Server]:
        """A server for `config` (models.toml text, or a file), shared while held."""
        text = config if isinstance(config, str) else f"{config.resolve()}\n{config.read_text()}"
        key = (text, args, tuple(sorted((env or {}).items())))

        def start() -> AbstractContextManager[Server]:
            path = self.config(config) if isinstance(config, str) else config
            return serving(path, self.log_for(path, "server.log"), args=args, env=env)

        with self.pool.hold(key, start, alive=lambda s: s.process.poll() is None) as server:
            yield server

    def own(
        self,
        config: str | Path | None,
        *,
        args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        wait_ready: bool = True,
        log: str = "server.log",
        localoip: Path = LOCALOIP,
        port: int | None = None,
    ) -> Server:
        """A server nobody else gets; `log` names its log file beside its models.toml (in a
        new folder without one). Without a config, `args` is its whole command line (see
        start_server)."""
        path = self.config(config) if isinstance(config, str) else config
        server = start_server(
            path,
            self.log_for(path, log) if path else self.folder("command") / log,
            wait_ready=wait_ready,
            args=args,
            env=env,
            localoip=localoip,
            port=port,
        )
        self.owned.append(server)
        return server

    @contextmanager
    def alone(self, config: str | Path, **options: Any) -> Iterator[Server]:
        """A server of `own`'s, stopped at the end of the block: for tests that leave it in a
        state no other test should be handed (models unloaded, objects deleted)."""
        server = self.own(config, **options)
        try:
            yield server
        finally:
            self.stop(server)

    def stop(self, server: Server) -> None:
        """Stop a server `own` started, if it still runs."""
        stop_server(server)
        if server in self.owned:
            self.owned.remove(server)

    def close(self) -> None:
        """Stop every server the pool started."""
        for server in self.owned:
            stop_server(server)
        self.owned.clear()
        self.pool.close()
