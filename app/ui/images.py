"""The Images tab: generation with step-by-step progress over SSE, and a grid of results."""

from __future__ import annotations

import asyncio
import struct
from dataclasses import dataclass
from typing import Any

from litestar import Controller, get, post
from litestar.datastructures import FormMultiDict
from litestar.response import ServerSentEvent
from litestar_htmx import HTMXRequest, HTMXTemplate
from localoip.app.errors import InvalidInput
from localoip.app.oip.parameters import image_request
from localoip.app.openai.image_store import ImageStore
from localoip.app.registry import ModelHandle, Registry
from localoip.app.ui import snippets
from localoip.app.ui.forms import integer, text
from localoip.app.ui.jobs import Job, Jobs, Render, closed, last_event_id, stream
from localoip.app.ui.messages import explain, require_ready
from localoip.app.ui.templates import renderer
from localoip.runtimes.base import Capability, ImageRequest


@dataclass(frozen=True, slots=True)
class ImageSettings:
    """The Images form, in the names the OpenAI images route uses."""

    model: str
    prompt: str
    fields: dict[str, Any]  # n, size, negative_prompt, steps, seed: the ones that were given

    @classmethod
    def from_form(cls, form: FormMultiDict) -> ImageSettings:
        model = text(form, "model")
        if not model:
            raise InvalidInput("Choose a model first.", "model")
        fields = {
            "n": integer(form, "n", "Number of images", 1, 64),
            # "512 x 512", "512X512" and 512 with a multiplication sign mean 512x512 too.
            "size": text(form, "size").lower().replace(" ", "").replace("\u00d7", "x") or None,
            "negative_prompt": text(form, "negative_prompt").strip() or None,
            "steps": integer(form, "steps", "Steps", 1, 500),
            "seed": integer(form, "seed", "Seed", 0, 2**63 - 1),
        }
        given = {k: v for k, v in fields.items() if v is not None}
        return cls(model=model, prompt=text(form, "prompt").strip(), fields=given)


@dataclass(frozen=True, slots=True)
class Picture:
    url: str
    seed: int
    width: int
    height: int


def placeholders(options: object) -> dict[str, str]:
    """A model's default size and steps, which blank fields mean, to show in them."""
    width, height, steps = (getattr(options, key, None) for key in ("width", "height", "steps"))
    return {"size": f"{width}x{height}" if width and height else "", "steps": str(steps or "")}


def png_size(png: bytes) -> tuple[int, int]:
    """Width and height from a PNG's header chunk."""
    width, height = struct.unpack(">II", png[16:24])
    return width, height


class ImageJob(Job):
    """One generation: `progress` events from the diffusers step callback, then `done`."""

    def __init__(
        self, render: Render, handle: ModelHandle, request: ImageRequest, store: ImageStore
    ) -> None:
        super().__init__(render)
        self.handle = handle
        self.request = request
        self.store = store
        self.pictures: list[Picture] = []
        self.error: str | None = None

    def progress(self, step: int, total: int) -> None:
        html = self.render("playground/image_progress.html", step=step, total=total)
        self.emit("progress", html, append=False)

    async def work(self) -> None:
        loop = asyncio.get_running_loop()

        def on_step(step: int, total: int) -> None:  # called in the model's worker thread
            loop.call_soon_threadsafe(self.progress, step, total)

        request = self.request
        try:
            generated = await self.handle.call(
                Capability.IMAGE, lambda rt: rt.generate_images(request, on_step)
            )
        except asyncio.CancelledError:
            if self.stop_reason is None:
                raise
            self.error = f"Stopped: {self.stop_reason}."
            return
        except Exception as exc:
            self.error = explain(exc)
            return
        self.pictures = [
            Picture(
                f"/v1/images/files/{self.store.put(image.png)}.png",
                image.seed,
                *png_size(image.png),
            )
            for image in generated
        ]

    def final_html(self) -> str:
        return self.render(
            "playground/image_result.html",
            job_id=self.id,
            model=self.handle.name,
            prompt=self.request.prompt,
            pictures=self.pictures,
            error=self.error,
        )


class ImagesController(Controller):
    path = "/ui/images"

    @post("/", status_code=200)
    async def generate(
        self, request: HTMXRequest, registry: Registry, jobs: Jobs, images: ImageStore
    ) -> HTMXTemplate:
        """A result card that shows progress, then the images."""
        settings = ImageSettings.from_form(await request.form())
        if not settings.prompt:
            raise InvalidInput("Describe the image you want in Prompt.", "prompt")
        handle = registry.get(settings.model)
        require_ready(handle, Capability.IMAGE)
        wanted = image_request(settings.prompt, settings.fields, handle.spec.options.max_images)
        job = jobs.add(ImageJob(renderer(request), handle, wanted, images))
        return HTMXTemplate(
            template_name="playground/image_job.html",
            context={"job": job, "model": handle.name, "prompt": settings.prompt},
        )

    @get("/{job_id:str}/stream")
    async def events(self, request: HTMXRequest, jobs: Jobs, job_id: str) -> ServerSentEvent:
        job = jobs.get(job_id, ImageJob)
        if job is None:
            return closed(
                renderer(request)(
                    "playground/image_result.html",
                    job_id=job_id,
                    model="",
                    prompt="",
                    pictures=[],
                    error="These images are no longer available: the server restarted "
                    "or has forgotten them.",
                )
            )
        return stream(job, last_event_id(request.headers.get("last-event-id")))

    @post("/code", status_code=200)
    async def code(self, request: HTMXRequest, api_key_env: str | None) -> HTMXTemplate:
        settings = ImageSettings.from_form(await request.form())
        server = str(request.base_url).rstrip("/")
        prompt = settings.prompt or "a watercolour fox in the snow"
        return HTMXTemplate(
            template_name="playground/code.html",
            context={
                "what": "these images",
                "snippets": snippets.images(
                    server, settings.model, prompt, settings.fields, api_key_env
                ),
            },
        )
