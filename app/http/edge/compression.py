"""Compressed bodies: gzip and deflate requests decoded (limited by their decoded size), and
gzip responses for clients that accept them, except streams (SSE and NDJSON), replies to
loopback clients and small replies.

tritonclient's `request_compression_algorithm` sends `Content-Encoding: gzip` or `deflate`.
"""

from __future__ import annotations

import zlib
from typing import Any

from litestar.config.compression import CompressionConfig
from litestar.middleware.compression import CompressionMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from localoip.app.core.errors import InvalidInput
from localoip.app.http.edge.hosts import is_loopback
from localoip.app.http.edge.refusals import BodyTooLarge, UnsupportedMediaType

CODINGS = ("gzip", "deflate")
STREAMED = (b"text/event-stream", b"application/x-ndjson")
"""Media types sent piece by piece as a reply is made: gzip would hold the pieces back."""
SMALLEST = 1400
"""Bytes below which a reply is sent as it is: it fits one TCP segment, so gzip saves no packet."""
PIECE = 64 * 1024
"""Decoded bytes handed on at a time, so a small body that inflates hugely never sits in memory."""


def coding_of(header: str) -> str:
    """A Content-Encoding value, normalised: "" for none, "x-gzip" is gzip."""
    coding = header.strip().lower()
    return "gzip" if coding == "x-gzip" else coding


def check_content_coding(header: str | None) -> None:
    """Raise 415 for a content coding this server cannot undo."""
    coding = coding_of(header or "")
    if coding not in ("", "identity", *CODINGS):
        raise UnsupportedMediaType(
            f"Content-Encoding {coding!r} is not supported; send gzip, deflate or an "
            "uncompressed body",
            code="unsupported_content_encoding",
        )


class Inflater:
    """Undoes one content coding, piece by piece, refusing more than `limit` decoded bytes."""

    def __init__(self, coding: str, limit: int) -> None:
        self.coding = coding
        self.limit = limit
        self.decoded = 0
        self._inflate: Any = None
        self._pending = b""  # compressed input not yet inflated

    def _start(self, data: bytes) -> Any:
        if self.coding == "gzip":
            return zlib.decompressobj(16 + zlib.MAX_WBITS)
        # "deflate" means the zlib format (RFC 9110), but some clients send raw deflate.
        zlib_header = len(data) >= 2 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0
        return zlib.decompressobj(zlib.MAX_WBITS if zlib_header else -zlib.MAX_WBITS)

    def feed(self, data: bytes) -> None:
        self._pending += data

    def piece(self) -> bytes:
        """The next decoded bytes (at most PIECE) of what was fed; b"" when it needs more."""
        while self._pending:
            if self._inflate is None or self._inflate.eof:  # gzip allows several members
                self._inflate = self._start(self._pending)
            try:
                out = self._inflate.decompress(self._pending, PIECE)
            except zlib.error as exc:
                raise InvalidInput(f"the body is not valid {self.coding} data: {exc}") from None
            self._pending = self._inflate.unused_data or self._inflate.unconsumed_tail
            self.decoded += len(out)
            if self.decoded > self.limit:
                raise BodyTooLarge(
                    f"the request body is over max_body_bytes ({self.limit} bytes) once decoded"
                )
            if out:
                return out
        return b""

    def finish(self) -> None:
        if self._inflate is not None and not self._inflate.eof:
            raise InvalidInput(f"the body is not valid {self.coding} data: it ends too early")


def decode_bodies(limit: int) -> Any:
    """Middleware that hands routes the decoded body of a gzip or deflate request.

    An unknown coding is left as it is, for the edge check to refuse with 415 in the route's
    shape; the request's Content-Encoding and Content-Length then describe the decoded body.
    """

    def middleware(app: ASGIApp) -> ASGIApp:
        async def decoding(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                return await app(scope, receive, send)
            header = dict(scope["headers"]).get(b"content-encoding", b"")
            coding = coding_of(header.decode("latin-1"))
            if coding not in CODINGS:
                return await app(scope, receive, send)
            inflater = Inflater(coding, limit)
            scope["headers"] = [
                (k, v)
                for k, v in scope["headers"]
                if k not in (b"content-encoding", b"content-length")
            ]
            received = ended = False

            async def inflated() -> Message:
                nonlocal received, ended
                while True:
                    piece = inflater.piece()
                    if piece:
                        return {"type": "http.request", "body": piece, "more_body": True}
                    if received:
                        if ended:
                            return await receive()  # after the body: the disconnect
                        inflater.finish()
                        ended = True
                        return {"type": "http.request", "body": b"", "more_body": False}
                    message = await receive()
                    if message["type"] != "http.request":
                        return message
                    inflater.feed(message.get("body", b""))
                    received = not message.get("more_body", False)

            return await app(scope, inflated, send)

        return decoding

    return middleware


class PlainEventStreams(CompressionMiddleware):
    """Litestar's compression, except for server-sent events and NDJSON lines, which must reach
    the client as each one is written, and for loopback clients: on the same machine gzip
    costs both ends CPU and saves no network (compressing took 17 % of the server's samples
    in a burst of 256 embedding requests; docs/benchmarks.md)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if client and is_loopback(client[0]):
            await self.app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    def create_compression_send_wrapper(
        self, send: Send, compression_encoding: Any, scope: Scope
    ) -> Send:
        compressed = super().create_compression_send_wrapper(send, compression_encoding, scope)
        plain = False

        async def sending(message: Message) -> None:
            nonlocal plain
            if message["type"] == "http.response.start":
                headers = dict(message.get("headers", []))
                plain = headers.get(b"content-type", b"").startswith(STREAMED)
            await (send if plain else compressed)(message)

        return sending


def response_compression() -> CompressionConfig:
    """gzip for responses of SMALLEST bytes or more when a client beyond loopback accepts it."""
    return CompressionConfig(
        backend="gzip",
        gzip_compress_level=6,
        minimum_size=SMALLEST,
        middleware_class=PlainEventStreams,
    )
