"""The Speech tab: a recording (MediaRecorder) or a dropped or chosen file, transcribed as a
job whose segments stream in with their times, kept in the store with the audio and a run
card, as image results are."""

from __future__ import annotations

import asyncio
import hashlib
from contextlib import aclosing
from importlib.metadata import version

from litestar import Controller, Response, get, post
from litestar.datastructures import UploadFile
from litestar.response import ServerSentEvent
from litestar_htmx import HTMXRequest, HTMXTemplate
from localoip.app.core.errors import InvalidInput, NotFound
from localoip.app.core.limits import audio_bytes
from localoip.app.core.model_digest import reading_digest
from localoip.app.core.registry import ModelHandle, Registry
from localoip.app.core.store import Database
from localoip.app.playground.forms import text
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
from localoip.app.playground.records import transcripts
from localoip.app.playground.records.transcripts import Line, Transcript
from localoip.app.playground.templates import renderer
from localoip.runtimes.capabilities import Capability
from localoip.runtimes.transcripts import TranscriptionRequest

TASKS = ("transcribe", "translate")
STOP_WORDS = {"stopped": "Stopped by you.", "time limit": "Stopped: it ran longer than allowed."}


class SpeechJob(KeptJob):
    """One transcription: a `segment` event per segment as the model decodes it, then `done`.
    Its result is kept in the store under the job's id; Stop cancels the call."""

    def __init__(
        self,
        render: Render,
        handle: ModelHandle,
        request: TranscriptionRequest,
        store: Database,
        result: Transcript,
    ) -> None:
        super().__init__(render, result.id)
        self.handle = handle
        self.request = request
        self.store = store
        self.result = result
        self.digest: asyncio.Future[str | None] | None = None
        self.saved = False

    async def work(self) -> None:
        self.digest = reading_digest(self.handle.spec)  # the model file's, for the run card
        request, result = self.request, self.result
        parts = self.handle.items(Capability.TRANSCRIBE, lambda rt: rt.transcribe_stream(request))
        try:
            async with aclosing(parts) as each:
                async for part in each:
                    if part.language is not None:
                        result.detected = part.language
                        result.duration = part.duration or 0.0
                    if part.segment is not None:
                        segment = part.segment
                        line = Line(segment.start, segment.end, segment.text)
                        result.lines.append(line)
                        html = self.render("playground/speech_line.html", line=line)
                        self.emit("segment", html)
        except asyncio.CancelledError:
            if self.stop_reason is None:
                raise
            self.stopped()
            return
        except Exception as exc:
            result.status, result.error = "failed", explain(exc)
            return
        result.status = "done"

    async def save(self) -> None:
        result = self.result
        self.saved = True
        result.digest = await (self.digest or reading_digest(self.handle.spec))
        result.server_version = version("localoip")
        await self.store.run(lambda db: transcripts.finish(db, result))

    def stopped(self) -> None:
        words = STOP_WORDS.get(self.stop_reason or "stopped", "Stopped.")
        self.result.status, self.result.error = "stopped", words

    def finish(self) -> None:
        if self.result.status == "running":  # cancelled before its work began
            self.stopped()
        super().finish()

    async def stop(self, reason: str) -> None:
        """Stop transcribing, keep the result, and wait until the model is free again."""
        await super().stop(reason)
        if not self.saved:
            await self.save()
        await self.handle.idle()

    def final_html(self) -> str:
        return self.render("playground/speech_result.html", result=self.result)


class SpeechController(Controller):
    path = "/ui/speech"

    @post("/", status_code=200)
    async def transcribe(
        self, request: HTMXRequest, registry: Registry, jobs: Jobs, store: Database
    ) -> HTMXTemplate:
        """A result card whose lines stream in, then the transcript with its run card."""
        form = await request.form()
        model = text(form, "model")
        if not model:
            raise InvalidInput("Choose a model first.", "model")
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidInput("Record something, or drop or choose an audio file.", "file")
        audio = await upload.read()
        if not audio:
            raise InvalidInput(f"“{upload.filename}” is empty.", "file")
        task = text(form, "task") or "transcribe"
        if task not in TASKS:
            raise InvalidInput("Task must be transcribe or translate.", "task")
        handle = registry.get(model)
        require_usable(handle, Capability.TRANSCRIBE)
        audio_bytes(len(audio), handle.spec.options)
        language = text(form, "language").strip().lower()
        jobs.make_room()
        result = Transcript(
            transcripts.new_id(),
            handle.name,
            upload.filename or "recording",
            len(audio),
            hashlib.sha256(audio).hexdigest(),
            upload.content_type or "application/octet-stream",
            task=task,
            language=language,
        )
        await store.run(lambda db: transcripts.add(db, result, audio))
        wanted = TranscriptionRequest(audio, language=language or None, task=task)
        jobs.add(SpeechJob(renderer(request), handle, wanted, store, result))
        return HTMXTemplate(template_name="playground/speech_job.html", context={"result": result})

    @get("/{job_id:str}/stream")
    async def events(
        self, request: HTMXRequest, jobs: Jobs, store: Database, job_id: str
    ) -> ServerSentEvent:
        """The job's events, after Last-Event-ID on a reconnect; a job that has ended answers
        `done` with the stored result."""
        after = last_event_id(request.headers.get("last-event-id"))
        job = jobs.get(job_id, SpeechJob)
        if job is not None:
            return stream(job, after)
        result = await store.run(lambda db: transcripts.found(db, job_id))
        return closed(renderer(request)("playground/speech_result.html", result=result))

    @post("/stop", status_code=200)
    async def stop(self, request: HTMXRequest, jobs: Jobs, store: Database) -> HTMXTemplate:
        """Stop a transcription; answers once it has ended, with the result."""
        job_id = text(await request.form(), "job")
        found = lambda: store.run(lambda db: transcripts.found(db, job_id))  # noqa: E731
        return await stop_card(
            jobs, job_id, SpeechJob, found, "playground/speech_result.html", "speech-job"
        )

    @get("/{job_id:str}/audio")
    async def audio(self, store: Database, job_id: str) -> Response[bytes]:
        """A result's audio, as it was uploaded or recorded; NotFound (404) if it is gone."""
        found = await store.run(lambda db: transcripts.audio(db, job_id))
        if found is None:
            raise NotFound(f"There is no recording “{job_id}”; it may have been deleted.", "job")
        data, media_type = found
        return Response(data, media_type=media_type, headers={"cache-control": "private"})
