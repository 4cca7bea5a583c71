"""The fixture module for real servers: every end-to-end test that needs `localoip serve` gets
it here, shared among the tests that ask for the same config (support/servers.py), and Chromium
for the browser tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.browser import chromium, close_page, open_page
from support.paths import REPO
from support.servers import Server, Servers


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    """The session's pool of real servers; each is stopped by the end of the session."""
    pool = Servers(tmp_path_factory.mktemp("servers"))
    yield pool
    pool.close()


@pytest.fixture(scope="session")
def server(servers: Servers, tiny_config: Path) -> Iterator[Server]:
    """localoip serving the tiny models, two that fail to load, and the real MiniLM."""
    with servers.shared(tiny_config) as running:
        yield running


@pytest.fixture(scope="session")
def default_server(servers: Servers) -> Iterator[Server]:
    """localoip serving the repository's own models.toml, offline."""
    with servers.shared(REPO / "models.toml") as running:
        yield running


@pytest.fixture
def http(server: Server) -> Iterator[httpx.Client]:
    """An httpx client on `server`."""
    with httpx.Client(base_url=server.url, timeout=60) as client:
        yield client


@pytest.fixture
def launch(servers: Servers) -> Iterator[Callable[..., Server]]:
    """Start servers of this test's own (Servers.own's arguments); those still running when the
    test ends are stopped then."""
    started: list[Server] = []

    def start(config: str | Path, **options: Any) -> Server:
        running = servers.own(config, **options)
        started.append(running)
        return running

    yield start
    for running in started:
        servers.stop(running)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, launched once a module: Playwright's sync API keeps an event loop
    running on the main thread while it is open, which breaks any later `asyncio.run`."""
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Any, server: Server) -> Iterator[Any]:
    """The playground of `server` in a fresh browser context; it must end without page errors."""
    opened = open_page(browser, server)
    yield opened
    close_page(opened)
