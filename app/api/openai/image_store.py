"""Generated images kept for a while, so `response_format=url` can point at localoip itself."""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict


class ImageStore:
    """PNG bytes by unguessable id, expiring after `ttl` seconds, at most `capacity` at once."""

    def __init__(self, ttl: float = 600.0, capacity: int = 256) -> None:
        self.ttl = ttl
        self.capacity = capacity
        self._images: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    def put(self, png: bytes) -> str:
        self._expire()
        image_id = secrets.token_urlsafe(16)
        self._images[image_id] = (time.monotonic() + self.ttl, png)
        while len(self._images) > self.capacity:
            self._images.popitem(last=False)
        return image_id

    def get(self, image_id: str) -> bytes | None:
        self._expire()
        entry = self._images.get(image_id)
        return entry[1] if entry else None

    def _expire(self) -> None:
        now = time.monotonic()
        while self._images and next(iter(self._images.values()))[0] < now:
            self._images.popitem(last=False)
