"""Whisper speech-to-text on faster-whisper (CTranslate2), with the audio decoded by PyAV.

Chosen by measurement (docs/benchmarks.md, bench/whisper_rtf.py): on this CPU, with 2 threads
and whisper-tiny's sizes, CTranslate2 in int8 transcribed 30 s in about a third of the time
transformers took and an eighth of whisper.cpp's (pywhispercpp); its wheels need no compiler.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import av
import numpy as np
from faster_whisper import WhisperModel
from localoip.runtimes.capabilities import InputError, Runtime
from localoip.runtimes.facts import ModelFacts, disk_size
from localoip.runtimes.options import WhisperOptions
from localoip.runtimes.transcripts import (
    Segment,
    Transcription,
    TranscriptionRequest,
    TranscriptPart,
    Word,
    transcript,
)

RATE = 16000  # Whisper's samples per second
TASKS = ("transcribe", "translate")
# With `fallback`, a window whose text repeats or is unlikely is decoded again at the next
# temperature (OpenAI's rule); the ladder starts at the temperature asked for
LADDER = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)


def decode_audio(data: bytes, max_seconds: float) -> np.ndarray:
    """The first audio stream of a file in any container FFmpeg reads (WAV, MP3, FLAC,
    OGG/Opus, M4A, WebM...), as float32 samples, mono, at 16 kHz.

    Raises InputError (param "file") for an empty file, one that is not audio or cannot be
    decoded (a truncated header), one that holds no samples, or audio longer than
    `max_seconds` (code "audio_too_long"); decoding stops at that point, not at the end.
    """
    if not data:
        raise InputError("the file is empty", "file")
    limit = int(max_seconds * RATE)
    chunks: list[np.ndarray] = []
    total = 0
    try:
        with av.open(io.BytesIO(data), mode="r", metadata_errors="ignore") as container:
            stream = next((s for s in container.streams if s.type == "audio"), None)
            if stream is None:
                raise InputError("the file has no audio stream", "file")
            resampler = av.AudioResampler(format="flt", layout="mono", rate=RATE)
            for frame in [*container.decode(stream), None]:
                for out in resampler.resample(frame):
                    chunk = out.to_ndarray().reshape(-1)
                    chunks.append(chunk)
                    total += chunk.size
                if total > limit:
                    raise InputError(
                        f"the audio is longer than {max_seconds:g} s, this model's limit "
                        "(max_audio_seconds)",
                        "file",
                        "audio_too_long",
                    )
    except av.FFmpegError as exc:
        raise InputError(f"the file is not audio that can be decoded: {exc}", "file") from None
    if total == 0:
        raise InputError("the file holds no audio", "file")
    return np.concatenate(chunks).astype(np.float32, copy=False)


class WhisperRuntime(Runtime):
    """A CTranslate2 Whisper folder (model.bin, config.json, tokenizer.json, vocabulary)."""

    options: WhisperOptions

    def __init__(self, path: str, options: WhisperOptions) -> None:
        super().__init__(path, options)
        self._model: WhisperModel | None = None

    def load(self) -> None:
        self._model = WhisperModel(
            self.path,
            device=self.options.device,
            compute_type=self.options.compute_type,
            cpu_threads=self.options.threads or 0,
            local_files_only=True,
        )

    def unload(self) -> None:
        self._model = None

    @property
    def model(self) -> WhisperModel:
        if self._model is None:
            raise RuntimeError("model is not loaded")
        return self._model

    def facts(self) -> ModelFacts:
        """The files' size, the compute type and that it is Whisper."""
        return ModelFacts(
            quantization=self.options.compute_type,
            file_size=disk_size(self.path),
            architecture="whisper",
        )

    def transcribe(self, request: TranscriptionRequest) -> Transcription:
        return transcript(self.transcribe_stream(request))

    def transcribe_stream(self, request: TranscriptionRequest) -> Iterator[TranscriptPart]:
        """The language and duration first, then each segment as it is decoded (lazily:
        a consumer that stops stops the decoding). Without `fallback`, the same request gives
        the same text."""
        self._check(request)
        samples = decode_audio(request.audio, self.options.max_audio_seconds)
        ladder = tuple(t for t in LADDER if t >= request.temperature) or (request.temperature,)
        segments, info = self.model.transcribe(
            samples,
            language=request.language,
            task=request.task,
            initial_prompt=request.prompt or None,
            temperature=ladder if self.options.fallback else (request.temperature,),
            beam_size=self.options.beam_size,
            word_timestamps=request.words,
            vad_filter=self.options.vad_filter,
            condition_on_previous_text=self.options.condition_on_previous_text,
            max_new_tokens=self.options.max_new_tokens,
        )
        yield TranscriptPart(language=info.language, duration=round(float(info.duration), 3))
        for i, s in enumerate(segments):
            words = tuple(
                Word(w.word, round(float(w.start), 3), round(float(w.end), 3), float(w.probability))
                for w in s.words or ()
            )
            yield TranscriptPart(
                segment=Segment(
                    id=i,
                    start=round(float(s.start), 3),
                    end=round(float(s.end), 3),
                    text=s.text,
                    tokens=tuple(s.tokens),
                    avg_logprob=float(s.avg_logprob),
                    no_speech_prob=float(s.no_speech_prob),
                    compression_ratio=float(s.compression_ratio),
                    temperature=float(s.temperature or 0.0),
                    words=words,
                )
            )

    def _check(self, request: TranscriptionRequest) -> None:
        if request.task not in TASKS:
            raise InputError(f"task must be one of {', '.join(TASKS)}", "task")
        if not 0.0 <= request.temperature <= 1.0:
            raise InputError("temperature must be between 0 and 1", "temperature")
        known = self.model.supported_languages
        if request.language is not None and request.language not in known:
            raise InputError(
                f"language {request.language!r} is not one this model knows "
                f"(ISO 639-1 codes such as {', '.join(known[:5])})",
                "language",
            )
        if request.task == "translate" and not self.model.model.is_multilingual:
            raise InputError("this model is English-only: it cannot translate", "model")
