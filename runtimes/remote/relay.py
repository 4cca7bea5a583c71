"""The OIP relay of a remote `oip` model: infer, infer_stream and metadata passed to the
upstream as they are (re-encoded as JSON where it lacks the binary extension), on the event
loop with the pooled asyncio client: no worker thread between, and a cancelled call ends at
once."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import quote

from localoip.runtimes.options import OipOptions
from localoip.runtimes.remote.common import RemoteRuntime, answered, upstream_error
from localoip.runtimes.wire.oip import HEADER_LENGTH, json_request
from localoip.runtimes.wire.sse import EventData
from yarl import URL

RELAYED_HEADERS = ("content-type", HEADER_LENGTH.lower())
"""The headers of an upstream's infer answer passed back to the client."""


class OipRelay(RemoteRuntime):
    """The relayed OIP calls of OipRemoteRuntime (oip.py), which negotiates `binary`."""

    options: OipOptions

    def __init__(self, path: str, options: OipOptions) -> None:
        super().__init__(path, options)
        self.binary = bool(options.binary)  # the binary tensor extension, as negotiated

    def _path(self, route: str, version: str | None = None) -> str:
        versioned = "" if version is None else f"/versions/{quote(version, safe='')}"
        return f"/v2/models/{quote(self.model, safe='')}{versioned}{route}"

    def _url(self, route: str, version: str | None = None) -> URL:
        """The upstream's URL of this model's `route` (at `version`), already quoted."""
        return URL(self.base + self._path(route, version), encoded=True)

    async def _answer(
        self, method: str, url: URL, **sending: Any
    ) -> tuple[bytes, Mapping[str, str]]:
        """The upstream's whole answer to one request on the asyncio client: its body and
        headers. Raises UpstreamError for an error answer (upstream_error)."""
        async with self.session().request(method, url, **sending) as response:
            answer = await response.read()
            status, got = response.status, response.headers
        if not 200 <= status < 300:
            raise upstream_error(answered(status, answer, got))
        return answer, got

    def _outgoing(self, body: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
        """A client's infer request as this upstream takes it: as it is, or as plain JSON
        when the upstream lacks the binary extension."""
        if self.binary:
            return body, headers
        return json_request(body, headers.get(HEADER_LENGTH)), {"content-type": "application/json"}

    async def relay(
        self, body: bytes, headers: dict[str, str], version: str | None = None
    ) -> tuple[bytes, dict[str, str]]:
        """An OIP infer request relayed to the model (at `version`, when given): every input,
        parameter, output and `id` as sent; the upstream's answer body and content headers.
        On the event loop (the asyncio client, `session`), so cancelling it ends the call.

        Raises InputError for a request that cannot be re-encoded, UpstreamError (the
        upstream's message, its status mapped) for an error answer."""
        content, sent = self._outgoing(body, headers)
        with self._upstream():
            answer, got = await self._answer(
                "POST", self._url("/infer", version), data=content, headers=sent
            )
        return answer, {k: got[k] for k in RELAYED_HEADERS if k in got}

    async def relay_stream(
        self, body: bytes, headers: dict[str, str], version: str | None = None
    ) -> AsyncIterator[str]:
        """An infer_stream request relayed: each upstream event's data as it arrives, nothing
        added; on the event loop, as relay. Errors as for relay, raised before the first
        event. Closing it early closes the upstream connection."""
        content, sent = self._outgoing(body, headers)
        sent = {**sent, "accept": "text/event-stream"}
        url = self._url("/infer_stream", version)
        with self._upstream():
            async with self.session().post(url, data=content, headers=sent) as response:
                if not 200 <= response.status < 300:
                    answer = await response.read()
                    raise upstream_error(answered(response.status, answer, response.headers))
                events = EventData()
                async for line in response.content:
                    data = events.line(line.decode().rstrip("\r\n"))
                    if data is not None:
                        yield data
                last = events.end()
                if last is not None:
                    yield last

    async def metadata(self, version: str | None = None) -> dict[str, Any]:
        """The model's metadata as the upstream gives it (inputs, outputs, versions...); on
        the event loop, as relay."""
        with self._upstream():
            answer, _ = await self._answer("GET", self._url("", version))
            metadata = json.loads(answer)
            if not isinstance(metadata, dict):
                raise ValueError("model metadata is not a JSON object")
            return metadata
