"""Base for runtimes that forward to another server: the HTTP clients, its key, its failures."""

from __future__ import annotations

import abc
import asyncio
import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import aiohttp
import httpx
from localoip.runtimes.capabilities import Runtime, UpstreamError

KEEPALIVE_SECONDS = 4.0
"""How long an idle pooled connection is kept: under uvicorn's 5 s (MLServer, KServe and
localoip serve with it), so a connection is dropped here before the upstream closes it under
a request being sent."""


class RemoteRuntime(Runtime):
    """Holds only HTTP clients to `source`, sending `Bearer $api_key_env` when it is set: a
    blocking one for calls on the model's worker threads, and a pooled asyncio one (aiohttp)
    for calls made on the event loop, with no thread between (`session`)."""

    def __init__(self, path: str, options: Any) -> None:
        super().__init__(path, options)
        self.base = path.rstrip("/")
        self._client: httpx.Client | None = None
        self._headers: dict[str, str] = {}
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the one the session lives on

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
        # One pooled keep-alive client for every call at once (httpx's Client is thread-safe).
        pool = self.options.max_concurrency
        client = httpx.Client(
            base_url=self.base,
            headers=headers,
            timeout=self.options.timeout,
            limits=httpx.Limits(max_connections=pool, max_keepalive_connections=pool),
        )
        try:
            self._probe(client)
        except BaseException:
            client.close()
            raise
        self._client, self._headers = client, headers

    def session(self) -> aiohttp.ClientSession:
        """The asyncio client, made on the running loop at its first call there: keep-alive
        connections pooled up to max_concurrency, the timeout for each connect and read
        (as the blocking client's), no cookies, no Content-Type added to a body sent without
        one. On the event loop only; RuntimeError unless loaded."""
        if self._client is None:
            raise RuntimeError("model is not loaded")
        if self._session is None:
            self._loop = asyncio.get_running_loop()
            timeout = self.options.timeout
            self._session = aiohttp.ClientSession(
                headers=self._headers,
                connector=aiohttp.TCPConnector(
                    limit=self.options.max_concurrency, keepalive_timeout=KEEPALIVE_SECONDS
                ),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout),
                cookie_jar=aiohttp.DummyCookieJar(),
                skip_auto_headers=("Content-Type",),
            )
        return self._session

    @abc.abstractmethod
    def _probe(self, client: httpx.Client) -> None:
        """Raise, saying why, unless the upstream serves the model."""

    def unload(self) -> None:
        """Close both clients; called off the event loop (a worker), with no call in flight."""
        if self._client is not None:
            self._client.close()
            self._client = None
        session, loop, self._session = self._session, self._loop, None
        if session is not None and loop is not None and loop.is_running():
            # its connections belong to the loop: closed there (waited for, from a worker)
            closing = asyncio.run_coroutine_threadsafe(session.close(), loop)
            if not _running_on(loop):
                closing.result(timeout=10)

    @contextmanager
    def _upstream(self) -> Iterator[None]:
        """Turn transport failures and unreadable answers into UpstreamError."""
        try:
            yield
        except (httpx.TimeoutException, TimeoutError):
            raise UpstreamError(
                f"upstream {self.base} did not answer within {self.options.timeout} s",
                504,
                code="upstream_timeout",
            ) from None
        except (httpx.TransportError, aiohttp.ClientError) as exc:
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


def _running_on(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


MESSAGE_CHARS = 500
"""The most of an upstream's error message passed on."""


def upstream_message(response: httpx.Response) -> str:
    """The message of an upstream's error answer, never its whole body: OIP's and OpenAI's
    `{"error": ...}`, FastAPI's `{"detail": ...}` (MLServer's 422, each problem's place and
    message, without the `input` it echoes), a short plain-text body, else the status words."""
    try:
        body = json.loads(response.content)
    except ValueError:
        text = response.text.strip()
        plain = response.headers.get("content-type", "").startswith("text/plain")
        return text[:MESSAGE_CHARS] if plain and text else response.reason_phrase
    message: Any = None
    if isinstance(body, dict):
        message = body.get("error") or body.get("detail") or body.get("message")
        if isinstance(message, dict):
            message = message.get("message") or message.get("msg")
        if isinstance(message, list):
            message = "; ".join(
                ".".join(str(p) for p in m.get("loc", ())) + f": {m.get('msg', '')}"
                if isinstance(m, dict)
                else str(m)
                for m in message
            )
    if not isinstance(message, str) or not message:
        return response.reason_phrase or f"status {response.status_code}"
    return message[:MESSAGE_CHARS]


def upstream_status(status: int) -> int:
    """The status a client gets for an upstream's: a 4xx stays the client's fault; a refused
    key (401, 403) and a server fault are this gateway's (502); 503 and 504 keep theirs."""
    if status in (401, 403) or (status >= 500 and status not in (503, 504)):
        return 502
    return status


def answered(status: int, body: bytes, headers: Mapping[str, str]) -> httpx.Response:
    """An asyncio client's answer, read and decoded, as the one error reading takes it."""
    kind = {"content-type": headers["content-type"]} if "content-type" in headers else {}
    return httpx.Response(status, content=body, headers=kind)


def upstream_error(response: httpx.Response) -> UpstreamError:
    """The upstream's error answer: its message (never the body it echoes), its status
    mapped (upstream_status); a refused key is this server's configuration's fault."""
    status = response.status_code
    message = upstream_message(response)
    if status in (401, 403):
        return UpstreamError(
            f"the upstream refused this server's credentials ({status}): {message}; "
            "check the model's options.api_key_env",
            502,
            code="upstream_auth_failed",
        )
    mapped = upstream_status(status)
    if mapped != status:  # the client sees another status: say which the upstream gave
        message = f"upstream answered {status}: {message}"
    return UpstreamError(message, mapped, code="upstream_error")
