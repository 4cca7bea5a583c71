"""OpenAI's audio answers, both ways: a transcription as json, text, srt, verbose_json or vtt,
and the streamed transcript.text.delta / transcript.text.done events; read back into a
Transcription where a remote runtime relays one."""

from __future__ import annotations

from typing import Literal

import msgspec
from localoip.runtimes.transcripts import Segment, Transcription, Word

RESPONSE_FORMATS = ("json", "text", "srt", "verbose_json", "vtt")
GRANULARITIES = ("segment", "word")


class DurationUsage(msgspec.Struct, kw_only=True):
    """What a transcription of audio costs: its seconds (OpenAI bills whisper-1 by them)."""

    type: str = "duration"
    seconds: float


class TranscriptionJson(msgspec.Struct, kw_only=True, omit_defaults=True):
    text: str
    usage: DurationUsage | None = None


class SegmentJson(msgspec.Struct, kw_only=True):
    id: int
    seek: int = 0
    start: float
    end: float
    text: str
    tokens: list[int] = []
    temperature: float = 0.0
    avg_logprob: float = 0.0
    compression_ratio: float = 0.0
    no_speech_prob: float = 0.0


class WordJson(msgspec.Struct, kw_only=True):
    word: str
    start: float
    end: float


class VerboseTranscription(msgspec.Struct, kw_only=True, omit_defaults=True):
    task: str  # "transcribe", or "translate" for /audio/translations
    language: str  # the ISO 639-1 code the model decoded in (OpenAI names it: "english")
    duration: float
    text: str
    segments: list[SegmentJson] | None = None
    words: list[WordJson] | None = None
    usage: DurationUsage | None = None


class TextDelta(msgspec.Struct, kw_only=True):
    type: Literal["transcript.text.delta"] = "transcript.text.delta"
    delta: str


class TextDone(msgspec.Struct, kw_only=True):
    type: Literal["transcript.text.done"] = "transcript.text.done"
    text: str
    usage: DurationUsage | None = None


def usage(result: Transcription) -> DurationUsage:
    return DurationUsage(seconds=round(result.duration, 3))


def verbose(
    result: Transcription, task: str, granularities: tuple[str, ...]
) -> VerboseTranscription:
    """verbose_json: segments unless only words were asked for, words when they were."""
    segments = [
        SegmentJson(
            id=s.id,
            seek=int(s.start * 100),
            start=s.start,
            end=s.end,
            text=s.text,
            tokens=list(s.tokens),
            temperature=s.temperature,
            avg_logprob=s.avg_logprob,
            compression_ratio=s.compression_ratio,
            no_speech_prob=s.no_speech_prob,
        )
        for s in result.segments
    ]
    words = [
        WordJson(word=w.word, start=w.start, end=w.end) for s in result.segments for w in s.words
    ]
    return VerboseTranscription(
        task=task,
        language=result.language,
        duration=result.duration,
        text=result.text,
        segments=segments if "segment" in granularities or not granularities else None,
        words=words if "word" in granularities else None,
        usage=usage(result),
    )


def _clock(seconds: float, mark: str) -> str:
    """00:01:02,500 (SubRip, `mark` ",") or 00:01:02.500 (WebVTT, ".")."""
    millis = round(seconds * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{mark}{millis:03d}"


def srt(result: Transcription) -> str:
    """SubRip subtitles: numbered cues from 1, one per segment."""
    cues = [
        f"{i}\n{_clock(s.start, ',')} --> {_clock(s.end, ',')}\n{s.text.strip()}\n"
        for i, s in enumerate(result.segments, 1)
    ]
    return "\n".join(cues)


def vtt(result: Transcription) -> str:
    """WebVTT subtitles: the header, then one cue per segment."""
    cues = [
        f"{_clock(s.start, '.')} --> {_clock(s.end, '.')}\n{s.text.strip()}\n"
        for s in result.segments
    ]
    return "\n".join(["WEBVTT\n", *cues])


def from_verbose(body: bytes) -> Transcription:
    """An upstream's verbose_json answer, read back (a remote OpenAI runtime's)."""
    answer = msgspec.json.decode(body, type=VerboseTranscription)
    words = [Word(w.word, w.start, w.end, 1.0) for w in answer.words or ()]
    segments = []
    for s in answer.segments or ():
        mine = tuple(w for w in words if s.start <= w.start < s.end)
        segments.append(
            Segment(
                s.id,
                s.start,
                s.end,
                s.text,
                tuple(s.tokens),
                s.avg_logprob,
                s.no_speech_prob,
                s.compression_ratio,
                s.temperature,
                mine,
            )
        )
    return Transcription(answer.text, answer.language, answer.duration, tuple(segments))
