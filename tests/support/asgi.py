"""An httpx (and httpx2) transport onto an ASGI app in this process, for clients that must see a
reply as it streams: Litestar's test transport hands over a reply only once it has ended, so it
can neither read an endless stream nor hang up on one.

Each request runs as a task on the event loop of a blocking portal (the one the app's lifespan
runs on), its reply comes back message by message, and closing the response before its end is
the client hanging up: the app's next `receive()` answers `http.disconnect`."""

from __future__ import annotations

import queue
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Future
from typing import Any
from urllib.parse import unquote

import anyio
import httpx
import httpx2
from anyio.from_thread import BlockingPortal

Message = dict[str, Any]


class InProcessTransport(httpx.BaseTransport):
    """Requests to `app` on `portal`'s loop, from a client at `client` (host, port)."""

    def __init__(
        self, app: Any, portal: BlockingPortal, client: tuple[str, int] = ("127.0.0.1", 50000)
    ) -> None:
        self.app = app
        self.portal = portal
        self.client = client

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Start the app on `request` and return once the reply's head is sent; raises what the
        app raised before that, or httpx.ReadTimeout after the request's read timeout."""
        body = request.read()
        timeout = request.extensions.get("timeout", {}).get("read")
        messages: queue.Queue[Message | None] = queue.Queue()
        hung_up: anyio.Event = self.portal.call(anyio.Event)
        asked = False

        async def receive() -> Message:
            nonlocal asked
            if not asked:
                asked = True
                return {"type": "http.request", "body": body, "more_body": False}
            await hung_up.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            messages.put(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                hung_up.set()  # a server reads a disconnect once the reply has ended

        def hang_up() -> None:
            self.portal.call(hung_up.set)

        task = self.portal.start_task_soon(self.app, self.scope(request), receive, send)
        task.add_done_callback(lambda _: messages.put(None))
        try:
            head = take(messages, timeout, request)
        except httpx.ReadTimeout:
            hang_up()  # a client that gives up closes its connection
            raise
        if head is None:
            task.result()
            raise RuntimeError("the app ended without a reply")
        reply = Reply(messages, timeout, request, task, hang_up)
        return httpx.Response(
            head["status"], headers=head.get("headers", []), stream=reply, request=request
        )

    def scope(self, request: httpx.Request) -> Message:
        """The ASGI HTTP scope of `request`, as a server on its URL's host and port builds it."""
        url = request.url
        return {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": request.method,
            "scheme": url.scheme,
            "path": unquote(url.path),
            "raw_path": url.raw_path.split(b"?", 1)[0],
            "root_path": "",
            "query_string": url.query,
            "headers": [(name.lower(), value) for name, value in request.headers.raw],
            "client": self.client,
            "server": (url.host, url.port or (443 if url.scheme == "https" else 80)),
        }


def take(messages: queue.Queue[Message | None], timeout: float | None, request: httpx.Request):
    """The app's next message; None once its task has ended."""
    try:
        return messages.get(timeout=timeout)
    except queue.Empty:
        raise httpx.ReadTimeout("the app sent nothing in time", request=request) from None


class Reply(httpx.SyncByteStream):
    """A reply's body as the app sends it; closed early, it tells the app the client left."""

    def __init__(
        self,
        messages: queue.Queue[Message | None],
        timeout: float | None,
        request: httpx.Request,
        task: Future,
        hang_up: Callable[[], None],
    ) -> None:
        self.messages = messages
        self.timeout = timeout
        self.request = request
        self.task = task
        self.hang_up = hang_up
        self.ended = False

    def __iter__(self) -> Iterator[bytes]:
        while not self.ended:
            try:
                message = take(self.messages, self.timeout, self.request)
            except httpx.ReadTimeout:
                self.close()
                raise
            if message is None:
                self.ended = True
                self.task.result()
                return
            if message["type"] != "http.response.body":
                continue
            self.ended = not message.get("more_body", False)
            if message.get("body"):
                yield message["body"]

    def close(self) -> None:
        """Hang up, unless the whole reply has been read."""
        if not self.ended:
            self.ended = True
            self.hang_up()


class AsyncInProcessTransport(httpx.AsyncBaseTransport):
    """The same for async clients: the wait for each reply's head and for each of its chunks
    happens on a worker thread, so the caller's event loop runs on meanwhile."""

    def __init__(self, transport: InProcessTransport) -> None:
        self.transport = transport

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """As InProcessTransport.handle_request, awaited."""
        await request.aread()
        response = await anyio.to_thread.run_sync(
            self.transport.handle_request, request, abandon_on_cancel=True
        )
        assert isinstance(response.stream, Reply)
        return httpx.Response(
            response.status_code,
            headers=response.headers.raw,
            stream=AsyncReply(response.stream),
            request=request,
        )


class AsyncReply(httpx.AsyncByteStream):
    """A Reply read from an async client."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.chunks = iter(reply)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while (chunk := await anyio.to_thread.run_sync(next, self.chunks, None)) is not None:
            yield chunk

    async def aclose(self) -> None:
        self.reply.close()


class Httpx2Transport(httpx2.BaseTransport):
    """The same for clients built on httpx2 (the `anthropic` SDK): each request handed to an
    InProcessTransport as httpx's, its reply read back as it streams."""

    def __init__(self, transport: InProcessTransport) -> None:
        self.transport = transport

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        """As InProcessTransport.handle_request; httpx's timeout is httpx2's, raised as such."""
        asked = httpx.Request(
            request.method,
            str(request.url),
            headers=request.headers.raw,
            content=request.read(),
            extensions=request.extensions,
        )
        try:
            response = self.transport.handle_request(asked)
        except httpx.ReadTimeout as exc:
            raise httpx2.ReadTimeout(str(exc), request=request) from None
        assert isinstance(response.stream, Reply)
        return httpx2.Response(
            response.status_code,
            headers=response.headers.raw,
            stream=Httpx2Reply(response.stream),
            request=request,
        )


class Httpx2Reply(httpx2.SyncByteStream):
    """A Reply read by an httpx2 client; closed early, the client hangs up."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply

    def __iter__(self) -> Iterator[bytes]:
        yield from self.reply

    def close(self) -> None:
        self.reply.close()
