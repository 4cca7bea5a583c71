"""The app as `create_app` builds it, run in this process under Litestar's TestClient (its
lifespan, so models load as in `localoip serve`), with clients that stream (support/asgi.py)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import httpx
import httpx2
import ollama
import pytest
from anyio.from_thread import BlockingPortal
from litestar import Litestar
from litestar.testing import TestClient
from localoip.app.core.config import load_settings
from localoip.app.server import create_app
from openai import AsyncOpenAI, OpenAI

from support.asgi import AsyncInProcessTransport, Httpx2Transport, InProcessTransport
from support.configs import written
from support.pool import Shared

# The edge answers loopback Host names only, as a server bound to 127.0.0.1:9000 would.
BASE = "http://127.0.0.1:9000"


class LogLines(logging.Handler):
    """The messages of the "localoip" log while an app runs, as a server's log has them."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@dataclass
class InProcessApp:
    """A running app: the Litestar object, the portal its loop runs on, its models.toml, and
    its log."""

    app: Litestar
    portal: BlockingPortal
    config: Path
    log: LogLines
    url: str = BASE

    def logs(self) -> str:
        """What the "localoip" log said since the app was built (in one process, an app running
        beside it logs here too: look for lines that name this app's models)."""
        return "\n".join(self.log.lines)

    @property
    def folder(self) -> Path:
        """The folder of its models.toml."""
        return self.config.parent

    def client(
        self,
        base: str = "",
        timeout: float = 60,
        peer: tuple[str, int] = ("127.0.0.1", 50000),
        **options: Any,
    ) -> httpx.Client:
        """An httpx client on the app at `base` (a path such as "/v1"), from the address `peer`
        (loopback unless given)."""
        transport = InProcessTransport(self.app, self.portal, peer)
        return httpx.Client(
            transport=transport, base_url=self.url + base, timeout=timeout, **options
        )

    def async_client(
        self, base: str = "", timeout: float = 60, **options: Any
    ) -> httpx.AsyncClient:
        """An async httpx client on the app at `base`."""
        transport = AsyncInProcessTransport(InProcessTransport(self.app, self.portal))
        return httpx.AsyncClient(
            transport=transport, base_url=self.url + base, timeout=timeout, **options
        )

    def async_openai(self, base: str = "/v1", api_key: str = "x", **options: Any) -> AsyncOpenAI:
        """The async openai SDK on the app at `base`, without retries."""
        return AsyncOpenAI(
            base_url=self.url + base,
            api_key=api_key,
            max_retries=0,
            http_client=self.async_client(timeout=120),
            **options,
        )

    def ollama(self, **options: Any) -> ollama.Client:
        """The ollama client on the app (OLLAMA_HOST=http://127.0.0.1:9000); `headers`
        carries an API key."""
        transport = InProcessTransport(self.app, self.portal)
        return ollama.Client(host=self.url, transport=transport, timeout=120, **options)

    def openai(self, base: str = "/v1", api_key: str = "x", **options: Any) -> OpenAI:
        """The openai SDK on the app at `base`, without retries."""
        return OpenAI(
            base_url=self.url + base,
            api_key=api_key,
            max_retries=0,
            http_client=self.client(timeout=120),
            **options,
        )

    def anthropic(
        self, base: str = "", api_key: str | None = "x", **options: Any
    ) -> anthropic.Anthropic:
        """The anthropic SDK on the app (its base URL without /v1, which the SDK adds), without
        retries. It speaks httpx2, so its requests go through Httpx2Transport."""
        transport = Httpx2Transport(InProcessTransport(self.app, self.portal))
        return anthropic.Anthropic(
            base_url=self.url + base,
            api_key=api_key,
            max_retries=0,
            http_client=httpx2.Client(transport=transport, timeout=120),
            **options,
        )


@contextmanager
def running(
    config: Path, env: dict[str, str] | None = None, timeout: float = 600
) -> Iterator[InProcessApp]:
    """`create_app(load_settings(config))` with its lifespan run, once every model has settled
    (/v2/health/ready answers 200); `env` is set while the app is built, which is when the app
    reads it. Raises RuntimeError when the models do not settle within `timeout` seconds."""
    log, logger = LogLines(), logging.getLogger("localoip")
    with pytest.MonkeyPatch.context() as patch:
        if logger.getEffectiveLevel() > logging.INFO:
            patch.setattr(logger, "level", logging.INFO)
        patch.setattr(logger, "handlers", [*logger.handlers, log])
        with pytest.MonkeyPatch.context() as building:
            for name, value in (env or {}).items():
                building.setenv(name, value)
            # The whole app in this process: models run on in-process runners, the same
            # interface as runner processes (whose crashes, restarts and memory are tests/e2e's).
            app = create_app(load_settings(config), runners="in-process")
        with TestClient(app, base_url=BASE, timeout=timeout) as lifespan:
            settled = InProcessApp(app, lifespan.blocking_portal, config, log)
            with settled.client() as client:
                deadline = time.monotonic() + timeout
                while client.get("/v2/health/ready").status_code != 200:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{config}: models not settled after {timeout} s")
                    time.sleep(0.05)
            yield settled


class Apps:
    """The in-process apps of one test session, shared by config text and environment
    (support/pool.py keeps the last two nobody holds for a later ask)."""

    def __init__(self, folder: Path) -> None:
        self.root = folder
        self.pool: Shared[InProcessApp] = Shared()

    def config(self, text: str) -> Path:
        """`text` written as models.toml in a new folder."""
        return written(text, self.root, "app")

    @contextmanager
    def shared(
        self, config: str | Path, env: dict[str, str] | None = None
    ) -> Iterator[InProcessApp]:
        """An app for `config` (models.toml text, or a file), shared while held."""
        text = config if isinstance(config, str) else f"{config.resolve()}\n{config.read_text()}"
        key = (text, tuple(sorted((env or {}).items())))

        def start() -> AbstractContextManager[InProcessApp]:
            return running(self.config(config) if isinstance(config, str) else config, env)

        with self.pool.hold(key, start) as app:
            yield app

    def close(self) -> None:
        """Stop every app, running each one's shutdown."""
        self.pool.close()
