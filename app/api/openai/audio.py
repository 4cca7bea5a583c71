"""POST /audio/transcriptions and /audio/translations: speech to text, as OpenAI defines them.

The request is multipart (`file`, `model`, `language`, `prompt`, `response_format`,
`temperature`, `timestamp_granularities[]`, `stream`): the one kind of API body a cross-site
page can send without a preflight, so these routes alone take it (`body_types(MULTIPART)`)
and the edge checks their Host, Origin and API key as for any API route.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from litestar import Controller, Request, Response, post
from litestar.datastructures import UploadFile
from localoip.app.api.openai.common import resolve, sse
from localoip.app.core.errors import InvalidInput
from localoip.app.core.limits import audio_bytes
from localoip.app.core.registry import ModelHandle, Registry
from localoip.app.http.edge.media_types import MULTIPART, body_types
from localoip.app.http.sse import primed
from localoip.runtimes.capabilities import Capability
from localoip.runtimes.transcripts import TranscriptionRequest, TranscriptPart, transcript
from localoip.runtimes.wire.openai.audio import (
    GRANULARITIES,
    RESPONSE_FORMATS,
    TextDelta,
    TextDone,
    TranscriptionJson,
    srt,
    usage,
    verbose,
    vtt,
)


@dataclass(frozen=True, slots=True)
class AudioForm:
    """The multipart fields, checked."""

    file: bytes
    model: str | None
    request: TranscriptionRequest
    response_format: str
    granularities: tuple[str, ...]
    stream: bool


def _text(form: Any, name: str) -> str | None:
    value = form.get(name)
    if value is None or isinstance(value, UploadFile):
        return None
    return str(value)


async def read_form(request: Request, task: str) -> AudioForm:
    """The form's fields; InvalidInput (400) naming a bad one. The file is read here."""
    form = await request.form()
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise InvalidInput("file is required: the audio, as a multipart file field", "file")
    data = await upload.read()
    response_format = _text(form, "response_format") or "json"
    if response_format not in RESPONSE_FORMATS:
        raise InvalidInput(
            f"response_format must be one of {', '.join(RESPONSE_FORMATS)}, "
            f"not {response_format!r}",
            "response_format",
        )
    granularities = tuple(str(g) for g in form.getall("timestamp_granularities[]", []))
    granularities += tuple(str(g) for g in form.getall("timestamp_granularities", []))
    for g in granularities:
        if g not in GRANULARITIES:
            raise InvalidInput(
                f"timestamp_granularities[] takes segment and word, not {g!r}",
                "timestamp_granularities[]",
            )
    if granularities and response_format != "verbose_json":
        raise InvalidInput(
            "timestamp_granularities[] needs response_format verbose_json",
            "timestamp_granularities[]",
        )
    temperature = _number(_text(form, "temperature"), "temperature")
    stream = (_text(form, "stream") or "false").lower()
    if stream not in ("true", "false"):
        raise InvalidInput(f"stream must be true or false, not {stream!r}", "stream")
    return AudioForm(
        file=data,
        model=_text(form, "model"),
        request=TranscriptionRequest(
            data,
            language=(_text(form, "language") or None) if task == "transcribe" else None,
            prompt=_text(form, "prompt") or None,
            temperature=temperature,
            task=task,
            words="word" in granularities,
        ),
        response_format=response_format,
        granularities=granularities,
        stream=stream == "true",
    )


def _number(text: str | None, name: str) -> float:
    if text is None or text == "":
        return 0.0
    try:
        value = float(text)
    except ValueError:
        raise InvalidInput(f"{name} must be a number, not {text!r}", name) from None
    if not 0.0 <= value <= 1.0:
        raise InvalidInput(f"{name} must be between 0 and 1", name)
    return value


async def transcribed(handle: ModelHandle, form: AudioForm) -> Any:
    """The answer in the form's response_format, or its events when it streams."""
    audio_bytes(len(form.file), handle.spec.options)
    req = form.request
    if form.stream:
        parts = handle.items(Capability.TRANSCRIBE, lambda rt: rt.transcribe_stream(req))
        return sse(_events(await primed(parts)))
    result = await handle.call(Capability.TRANSCRIBE, lambda rt: rt.transcribe(req))
    if form.response_format == "text":
        return Response(result.text + "\n", media_type="text/plain; charset=utf-8")
    if form.response_format == "srt":
        return Response(srt(result), media_type="text/plain; charset=utf-8")
    if form.response_format == "vtt":
        return Response(vtt(result), media_type="text/vtt; charset=utf-8")
    if form.response_format == "verbose_json":
        return verbose(result, req.task, form.granularities)
    return TranscriptionJson(text=result.text, usage=usage(result))


async def _events(parts: AsyncIterator[TranscriptPart]) -> AsyncIterator[TextDelta | TextDone]:
    """A delta per segment (the first without its leading space), then the whole text."""
    seen: list[TranscriptPart] = []
    async for part in parts:
        if part.segment is not None and part.segment.text:
            first = not any(p.segment for p in seen)
            yield TextDelta(delta=part.segment.text.lstrip() if first else part.segment.text)
        seen.append(part)
    result = transcript(seen)
    yield TextDone(text=result.text, usage=usage(result))


class AudioController(Controller):
    @post("/audio/transcriptions", status_code=200, opt=body_types(MULTIPART))
    async def transcriptions(
        self, request: Request, registry: Registry, route_model: str | None
    ) -> Any:
        form = await read_form(request, "transcribe")
        return await transcribed(resolve(registry, form.model, route_model), form)

    @post("/audio/translations", status_code=200, opt=body_types(MULTIPART))
    async def translations(
        self, request: Request, registry: Registry, route_model: str | None
    ) -> Any:
        form = await read_form(request, "translate")
        return await transcribed(resolve(registry, form.model, route_model), form)
