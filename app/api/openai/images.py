"""POST /images/generations, and GET /v1/images/files/{name}: the generated images that
`response_format=url` points at, kept for a while."""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict

from litestar import Controller, Request, Response, get, post
from localoip.app.api.openai.common import resolve
from localoip.app.core.errors import NotFound
from localoip.app.core.limits import image_request
from localoip.app.core.registry import Registry
from localoip.app.http.bodies import JSONObject, decode
from localoip.runtimes.capabilities import Capability
from localoip.runtimes.wire.openai.objects import Image, ImagesResponse, b64
from localoip.runtimes.wire.openai.requests import ImageGenerationRequest


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


class ImagesController(Controller):
    @post("/images/generations", status_code=200)
    async def images(
        self, request: Request, registry: Registry, images: ImageStore, route_model: str | None
    ) -> JSONObject:
        req = decode(await request.body(), ImageGenerationRequest)
        handle = resolve(registry, req.model, route_model)
        handle.require(Capability.IMAGE)
        settings = {
            "size": req.size,
            "n": req.n or 1,
            "negative_prompt": req.negative_prompt,
            "steps": req.steps,
            "seed": req.seed,
            "guidance_scale": req.guidance_scale,
        }
        given = {k: v for k, v in settings.items() if v is not None}
        image = image_request(req.prompt, given, handle.spec.options)
        generated = await handle.call(Capability.IMAGE, lambda rt: rt.generate_images(image))
        base = str(request.base_url).rstrip("/")
        data = [
            Image(b64_json=b64(img.png))
            if req.response_format == "b64_json"
            else Image(url=f"{base}/v1/images/files/{images.put(img.png)}.png")
            for img in generated
        ]
        return ImagesResponse(
            created=int(time.time()), data=data, seed=[img.seed for img in generated]
        )


class ImageFilesController(Controller):
    path = "/v1/images/files"

    @get("/{name:str}")
    async def image_file(self, images: ImageStore, name: str) -> Response[bytes]:
        """A generated image, while it lasts."""
        png = images.get(name.removesuffix(".png"))
        if png is None:
            raise NotFound(f"image {name!r} does not exist or has expired")
        return Response(png, media_type="image/png")
