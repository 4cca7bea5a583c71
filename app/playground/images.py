"""The Images tab: generation with step-by-step progress over SSE, Stop, and results kept in the
store (pictures and all), so they outlive a reload and a restart."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from importlib.metadata import version
from typing import Any

from litestar import Controller, Response, get, post
from litestar.datastructures import FormMultiDict
from litestar.response import ServerSentEvent
from litestar_htmx import HTMXRequest, HTMXTemplate
from localoip.app.core.errors import InvalidInput, NotFound
from localoip.app.core.limits import image_request
from localoip.app.core.model_digest import reading_digest
from localoip.app.core.registry import ModelHandle, Registry
from localoip.app.core.store import Database
from localoip.app.playground import snippets
from localoip.app.playground.forms import integer, text
from localoip.app.playground.jobs import (
    Jobs,
    KeptJob,
    Render,
    closed,
    last_event_id,
    stop_card,
    stream,
)
from localoip.app.playground.messages import explain, require_usable
from localoip.app.playground.records import image_results
from localoip.app.playground.records.image_results import ImageResult
from localoip.app.playground.templates import renderer
from localoip.runtimes.capabilities import Capability, ImageRequest

STOP_WORDS = {"stopped": "Stopped by you", "time limit": "Stopped: it ran longer than allowed"}


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


def placeholders(options: object) -> dict[str, str]:
    """A model's default size and steps, which blank fields mean, to show in them."""
    width, height, steps = (getattr(options, key, None) for key in ("width", "height", "steps"))
    return {"size": f"{width}x{height}" if width and height else "", "steps": str(steps or "")}


def with_defaults(request: ImageRequest, options: object) -> ImageRequest:
    """The request with the model's defaults (size, steps, guidance) where it leaves them
    out, as the diffusers runtime fills them: what a run card records and runs again."""
    defaults = {
        key: getattr(options, key, None)
        for key in ("width", "height", "steps", "guidance_scale")
        if getattr(request, key) is None
    }
    return replace(request, **{k: v for k, v in defaults.items() if v is not None})


class ImageJob(KeptJob):
    """One generation: `progress` events from the diffusers step callback, then `done`. Its
    result, pictures and all, is kept in the store under the job's id; Stop (or the time
    limit) cancels the call, which stops the runner at its next denoising step."""

    def __init__(
        self,
        render: Render,
        handle: ModelHandle,
        request: ImageRequest,
        store: Database,
        result: ImageResult,
    ) -> None:
        super().__init__(render, result.id)
        self.handle = handle
        self.request = request
        self.store = store
        self.result = result
        self.pngs: list[tuple[int, bytes]] = []
        self.saved = False
        self.digest: asyncio.Future[str | None] | None = None

    def progress(self, step: int, total: int) -> None:
        self.result.step, self.result.total = step, total
        html = self.render("playground/image_progress.html", step=step, total=total)
        self.emit("progress", html, append=False)

    async def work(self) -> None:
        loop = asyncio.get_running_loop()

        def on_step(step: int, total: int) -> None:  # called in the model's worker thread
            loop.call_soon_threadsafe(self.progress, step, total)

        request = self.request
        self.digest = reading_digest(self.handle.spec)  # the model file's, for the run card
        try:
            generated = await self.handle.call(
                Capability.IMAGE, lambda rt: rt.generate_images(request, on_step)
            )
        except asyncio.CancelledError:
            if self.stop_reason is None:
                raise
            self.stopped()
            return
        except Exception as exc:
            self.result.status, self.result.error = "failed", explain(exc)
            return
        self.pngs = [(image.seed, image.png) for image in generated]
        self.result.status = "done"

    def stopped(self) -> None:
        words = STOP_WORDS.get(self.stop_reason or "stopped", "Stopped")
        where = f" at step {self.result.step} of {self.result.total}" if self.result.total else ""
        self.result.status, self.result.error = "stopped", f"{words}{where}."

    async def save(self) -> None:
        result, pngs = self.result, self.pngs
        self.saved = True
        result.digest = await (self.digest or reading_digest(self.handle.spec))
        result.server_version = version("localoip")
        await self.store.run(lambda db: image_results.finish(db, result, pngs))

    def finish(self) -> None:
        if self.result.status == "running":  # cancelled before its work began
            self.stopped()
        super().finish()

    async def stop(self, reason: str) -> None:
        """Stop generating, keep the result, and wait until the model is free again."""
        await super().stop(reason)
        if not self.saved:
            await self.save()
        await self.handle.idle()

    def final_html(self) -> str:
        return self.render("playground/image_result.html", result=self.result)


async def start_images(
    request: HTMXRequest,
    jobs: Jobs,
    store: Database,
    handle: ModelHandle,
    wanted: ImageRequest,
    result: ImageResult,
    arena: str | None = None,
) -> ImageJob:
    """A generation kept in the store as it starts (running), then run as a job; the request
    it records is the one the model is given, its defaults filled in."""
    result.ran = with_defaults(wanted, handle.spec.options)
    await store.run(lambda db: image_results.add(db, result, arena))
    return jobs.add(ImageJob(renderer(request), handle, result.ran, store, result))


def gone(job_id: str) -> ImageResult:
    return ImageResult(
        job_id,
        "",
        "",
        status="failed",
        error="These images are no longer available: they were deleted to make room.",
    )


@dataclass(frozen=True, slots=True)
class Shown:
    """A result as a page shows it: following its job while it runs, else as stored."""

    result: Any  # an ImageResult, or the Speech tab's Transcript
    running: bool


def as_shown(jobs: Jobs, found: list[Any], kind: type[KeptJob] | None = None) -> list[Shown]:
    """Stored results (images, or another kind of job's with a `result`); those still being
    made are shown as their jobs have them, and follow."""
    out = []
    for result in found:
        job = jobs.get(result.id, kind or ImageJob) if result.status == "running" else None
        out.append(Shown(result, False) if job is None else Shown(job.result, True))  # type: ignore[attr-defined]
    return out


class ImagesController(Controller):
    path = "/ui/images"

    @post("/", status_code=200)
    async def generate(
        self, request: HTMXRequest, registry: Registry, jobs: Jobs, store: Database
    ) -> HTMXTemplate:
        """A result card that shows progress, then the images."""
        settings = ImageSettings.from_form(await request.form())
        if not settings.prompt:
            raise InvalidInput("Describe the image you want in Prompt.", "prompt")
        handle = registry.get(settings.model)
        require_usable(handle, Capability.IMAGE)
        wanted = image_request(settings.prompt, settings.fields, handle.spec.options)
        jobs.make_room()
        result = ImageResult(image_results.new_id(), handle.name, settings.prompt, settings.fields)
        await start_images(request, jobs, store, handle, wanted, result)
        return HTMXTemplate(template_name="playground/image_job.html", context={"result": result})

    @get("/{job_id:str}/stream")
    async def events(
        self, request: HTMXRequest, jobs: Jobs, store: Database, job_id: str
    ) -> ServerSentEvent:
        """The job's events; after Last-Event-ID if the page sends one (a reconnect). A job
        that has ended answers `done` with the stored result."""
        after = last_event_id(request.headers.get("last-event-id"))
        job = jobs.get(job_id, ImageJob)
        if job is not None:
            return stream(job, after)
        result = await store.run(lambda db: image_results.get(db, job_id))
        html = renderer(request)("playground/image_result.html", result=result or gone(job_id))
        return closed(html)

    @post("/stop", status_code=200)
    async def stop(self, request: HTMXRequest, jobs: Jobs, store: Database) -> HTMXTemplate:
        """Stop a generation from any page; answers once the model is free, with the result.
        NotFound (404) for an id that names no images."""
        job_id = text(await request.form(), "job")
        found = lambda: store.run(lambda db: image_results.found(db, job_id))  # noqa: E731
        return await stop_card(
            jobs, job_id, ImageJob, found, "playground/image_result.html", "image-job"
        )

    @get("/files/{name:str}")
    async def picture(self, store: Database, name: str) -> Response[bytes]:
        """A stored picture by id (`ID.png`); NotFound (404) if there is none."""
        pid = name.removesuffix(".png")
        png = await store.run(lambda db: image_results.png(db, pid))
        if png is None:
            raise NotFound(f"There is no picture “{name}”; it may have been deleted.", "picture")
        # An id names one picture for ever: the browser may keep it.
        headers = {"cache-control": "private, max-age=86400, immutable"}
        return Response(png, media_type="image/png", headers=headers)

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
