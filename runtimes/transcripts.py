"""Speech to text: a transcription's request, its segments and words, and the fold of its
stream (the types of the TRANSCRIBE capability, which runtimes/capabilities.py declares)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TranscriptionRequest:
    """Speech to text: an audio file as uploaded (WAV, MP3, FLAC, OGG/Opus, M4A, WebM...)."""

    audio: bytes
    language: str | None = None  # ISO 639-1 ("en"); None: detected from the audio
    prompt: str | None = None  # text the speech follows: names, spelling, style
    temperature: float = 0.0
    task: str = "transcribe"  # "translate": into English text
    words: bool = False  # word timestamps as well (segments always have theirs)


@dataclass(frozen=True, slots=True)
class Word:
    word: str
    start: float  # seconds from the audio's start
    end: float
    probability: float


@dataclass(frozen=True, slots=True)
class Segment:
    """A stretch of speech and its text, as the model decoded it."""

    id: int
    start: float  # seconds from the audio's start
    end: float
    text: str
    tokens: tuple[int, ...] = ()
    avg_logprob: float = 0.0
    no_speech_prob: float = 0.0
    compression_ratio: float = 0.0
    temperature: float = 0.0
    words: tuple[Word, ...] = ()


@dataclass(frozen=True, slots=True)
class TranscriptPart:
    """A streamed piece of a transcription: first the language and the audio's duration
    (seconds), then each segment as it is decoded."""

    segment: Segment | None = None
    language: str | None = None
    duration: float | None = None


@dataclass(frozen=True, slots=True)
class Transcription:
    text: str
    language: str
    duration: float  # seconds of audio
    segments: tuple[Segment, ...]


def transcript(parts: Iterable[TranscriptPart]) -> Transcription:
    """The parts of a streamed transcription, folded into the whole."""
    language, duration, segments = "", 0.0, []
    for part in parts:
        language = part.language or language
        duration = part.duration if part.duration is not None else duration
        if part.segment is not None:
            segments.append(part.segment)
    text = "".join(s.text for s in segments).strip()
    return Transcription(text, language, duration, tuple(segments))
