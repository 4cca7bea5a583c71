"""A thin client of a running server's model repository API (the OIP repository extension),
for `localoip ps`, `load` and `unload`."""

from __future__ import annotations

import os
from typing import Any

import httpx

DEFAULT_URL = "http://127.0.0.1:9000"
HOST_ENV = "LOCALOIP_HOST"
KEY_ENV = "LOCALOIP_API_KEY"
TIMEOUT = httpx.Timeout(60.0, connect=5.0)
LOAD_TIMEOUT = httpx.Timeout(None, connect=5.0)  # a load may download a model first


class ClientError(Exception):
    """The server could not be reached, or refused; the message says which and why."""


def server_url(given: str | None = None) -> str:
    """The server's base URL: `--url`, else $LOCALOIP_HOST (`host:port` or a URL), else the
    default address `localoip serve` binds."""
    text = (given or os.environ.get(HOST_ENV) or DEFAULT_URL).strip()
    if "://" not in text:
        text = "http://" + text
    return text.rstrip("/")


class RepositoryClient:
    """Calls a localoip server's `/v2/repository` routes, sending $LOCALOIP_API_KEY if set."""

    def __init__(self, url: str, api_key: str | None = None) -> None:
        self.url = url
        key = api_key if api_key is not None else os.environ.get(KEY_ENV)
        self.headers = {"authorization": f"Bearer {key}"} if key else {}

    def index(self) -> list[dict[str, Any]]:
        """Every model the server knows, as the repository index gives it."""
        return self._post("/v2/repository/index", json={}, timeout=TIMEOUT)

    def load(self, name: str) -> None:
        self._post(f"/v2/repository/models/{name}/load", timeout=LOAD_TIMEOUT)

    def unload(self, name: str) -> None:
        self._post(f"/v2/repository/models/{name}/unload", timeout=TIMEOUT)

    def _post(self, path: str, *, timeout: httpx.Timeout, json: Any = None) -> Any:
        try:
            response = httpx.post(self.url + path, json=json, headers=self.headers, timeout=timeout)
        except httpx.TransportError as exc:
            raise ClientError(
                f"no localoip server answers at {self.url} ({exc or type(exc).__name__}); "
                f"start one with `localoip serve`, or point --url or ${HOST_ENV} at it"
            ) from None
        if response.status_code == 200:
            return response.json() if response.content else None
        try:
            message = response.json()["error"]
        except (ValueError, KeyError, TypeError):
            message = response.text.strip() or response.reason_phrase
        if response.status_code == 401 and not self.headers:
            message += f" (set ${KEY_ENV})"
        raise ClientError(f"{message} (HTTP {response.status_code})")
