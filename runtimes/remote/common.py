"""Base for runtimes that forward to another server: the HTTP client, its key, its failures."""

from __future__ import annotations

import abc
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from localoip.runtimes.capabilities import Runtime, UpstreamError


class RemoteRuntime(Runtime):
    """Holds only an HTTP client to `source`, sending `Bearer $api_key_env` when it is set."""

    def __init__(self, path: str, options: Any) -> None:
        super().__init__(path, options)
        self.base = path.rstrip("/")
        self._client: httpx.Client | None = None

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            raise RuntimeError("model is not loaded")
        return self._client

    @property
    def model(self) -> str:
        """The upstream model's name (config defaults it to the local name)."""
        if self.options.model is None:
            raise RuntimeError("options.model is not set")
        return self.options.model

    def load(self) -> None:
        """Make the client and check, with `_probe`, that the upstream serves the model."""
        headers = {}
        if self.options.api_key_env:
            key = os.environ.get(self.options.api_key_env)
            if not key:
                raise ValueError(
                    f"environment variable {self.options.api_key_env} (options.api_key_env) "
                    f"holding the API key for {self.base} is not set"
                )
            headers["Authorization"] = f"Bearer {key}"
        client = httpx.Client(base_url=self.base, headers=headers, timeout=self.options.timeout)
        try:
            self._probe(client)
        except BaseException:
            client.close()
            raise
        self._client = client

    @abc.abstractmethod
    def _probe(self, client: httpx.Client) -> None:
        """Raise, saying why, unless the upstream serves the model."""

    def unload(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    @contextmanager
    def _upstream(self) -> Iterator[None]:
        """Turn transport failures and unreadable answers into UpstreamError."""
        try:
            yield
        except httpx.TimeoutException:
            raise UpstreamError(
                f"upstream {self.base} did not answer within {self.options.timeout} s",
                504,
                code="upstream_timeout",
            ) from None
        except httpx.TransportError as exc:
            raise UpstreamError(
                f"upstream {self.base} is unreachable: {type(exc).__name__}: {exc}",
                502,
                code="upstream_unreachable",
            ) from None
        except (AttributeError, KeyError, IndexError, TypeError, ValueError) as exc:
            raise UpstreamError(
                f"upstream {self.base} sent an answer this server cannot read: "
                f"{type(exc).__name__}: {exc}",
                502,
                code="upstream_bad_response",
            ) from None
