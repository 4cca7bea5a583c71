"""Images named by URL, fetched by the server before a request reaches any runtime, or refused.

Off unless `[server] image_urls = true`: a fetch is a request the server makes on a client's
behalf, to any address the server can reach (SSRF), so it is the operator's choice. When on,
only http and https are fetched, within `image_url_max_bytes` (counted as the body arrives,
whatever Content-Length says) and `image_url_timeout` seconds for the whole fetch, following at
most MAX_REDIRECTS redirects, and the answer must be an image/* type. Every failure is an
InputError naming the image's part, so each protocol answers its own 400.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from urllib.parse import urlsplit

import httpx
from localoip.app.core.config import ServerSettings
from localoip.runtimes.capabilities import ChatImage, ChatRequest, InputError, chat_images

MAX_REDIRECTS = 3
SCHEMES = ("http", "https")
OFF = (
    "fetching images from URLs is off (the server's image_urls option): send the image as a "
    "data: URL or base64"
)


class ImageFetcher:
    """Fetches the images a chat names by URL, under `[server]`'s image_url_* limits."""

    def __init__(self, server: ServerSettings) -> None:
        self.on = server.image_urls
        self.max_bytes = server.image_url_max_bytes
        self.timeout = server.image_url_timeout

    async def fetched(self, chat: ChatRequest) -> ChatRequest:
        """`chat` with every image that has a URL replaced by the image fetched from it; the
        same chat when none has one. Raises InputError naming the first image that cannot be
        fetched (or any, when fetching is off)."""
        pending = [image for image in chat_images(chat.messages) if image.url is not None]
        if not pending:
            return chat
        if not self.on:
            raise InputError(OFF, pending[0].param)
        async with httpx.AsyncClient(
            follow_redirects=True,
            max_redirects=MAX_REDIRECTS,
            timeout=self.timeout,
            headers={"accept": "image/*"},
        ) as client:
            got = await asyncio.gather(*(self._fetch(client, image) for image in pending))
        found = {id(old): new for old, new in zip(pending, got, strict=True)}
        messages = [
            replace(m, images=tuple(found.get(id(i), i) for i in m.images)) if m.images else m
            for m in chat.messages
        ]
        return replace(chat, messages=messages)

    async def _fetch(self, client: httpx.AsyncClient, image: ChatImage) -> ChatImage:
        url, param = image.url or "", image.param
        scheme = urlsplit(url).scheme.lower()
        if scheme not in SCHEMES:
            raise InputError(
                f"only http and https image URLs are fetched, not {scheme or 'this'}: URLs", param
            )
        try:
            async with asyncio.timeout(self.timeout):
                data = await self._body(client, url, param)
        except (TimeoutError, httpx.TimeoutException):  # the whole fetch's, or one read's
            raise InputError(
                f"the image URL did not answer within {self.timeout:g} s", param
            ) from None
        except httpx.TooManyRedirects:
            raise InputError(
                f"the image URL redirected more than {MAX_REDIRECTS} times", param
            ) from None
        except httpx.HTTPError as exc:
            raise InputError(f"the image URL could not be fetched: {exc}", param) from None
        return ChatImage(data, param)

    async def _body(self, client: httpx.AsyncClient, url: str, param: str) -> bytes:
        """The answer's body, refused past `max_bytes` as it arrives."""
        async with client.stream("GET", url) as response:
            if response.status_code != 200:
                raise InputError(f"the image URL answered {response.status_code}", param)
            kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if not kind.startswith("image/"):
                raise InputError(
                    f"the image URL sent {kind or 'no content type'}, not an image/* type", param
                )
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self.max_bytes:
                raise self._too_big(param)
            chunks, size = [], 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > self.max_bytes:
                    raise self._too_big(param)
                chunks.append(chunk)
        if not size:
            raise InputError("the image URL sent an empty body", param)
        return b"".join(chunks)

    def _too_big(self, param: str) -> InputError:
        return InputError(
            f"the image at the URL is over image_url_max_bytes ({self.max_bytes} bytes)", param
        )
