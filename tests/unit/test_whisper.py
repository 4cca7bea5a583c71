"""The whisper runtime without a server: audio decoded from each container and resampled, the
tiny random Whisper transcribing, subtitles from segments, and its catalogue entry."""

from __future__ import annotations

from pathlib import Path

import msgspec
import numpy as np
import pytest
from localoip.runtimes.capabilities import InputError, TranscriptionModel
from localoip.runtimes.catalogue import missing_library, runtime_for_files
from localoip.runtimes.options import WhisperOptions
from localoip.runtimes.transcripts import (
    Segment,
    Transcription,
    TranscriptionRequest,
    TranscriptPart,
    transcript,
)
from localoip.runtimes.whisper import RATE, WhisperRuntime, decode_audio
from localoip.runtimes.wire.openai.audio import from_verbose, srt, verbose, vtt
from support.audio_files import CONTAINERS, encode, tone, wav
from support.tiny_whisper import build_tiny_whisper


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> WhisperRuntime:
    folder = build_tiny_whisper(tmp_path_factory.mktemp("whisper") / "tiny")
    loaded = WhisperRuntime(str(folder), WhisperOptions(beam_size=1, fallback=False, threads=1))
    loaded.load()
    return loaded


@pytest.mark.parametrize("container", list(CONTAINERS))
def test_each_container_decodes_to_16_khz_mono_of_the_same_length(container):
    samples = decode_audio(encode(tone(2.0, 44100, stereo=True), 44100, container), 60)
    assert samples.dtype == np.float32 and samples.ndim == 1
    # lossy codecs pad a few milliseconds (AAC's priming samples)
    assert abs(samples.size - 2 * RATE) < 0.05 * RATE


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_resampling_keeps_the_waveform(rate):
    expected = tone(1.0, RATE)[0]
    got = decode_audio(wav(1.0, rate), 60)
    assert got.size == pytest.approx(RATE, abs=2)
    n = min(got.size, expected.size) - 200  # the resampler's filter delay at the ends
    # a tone sampled at another rate and resampled matches the tone sampled at 16 kHz
    correlation = np.corrcoef(got[100:n], expected[100:n])[0, 1]
    assert correlation > 0.95


def test_stereo_is_mixed_down_to_one_channel():
    assert decode_audio(wav(1.0, RATE, stereo=True), 60).size == RATE


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "empty"),
        (b"plain text, not a sound file at all" * 4, "not audio"),
        (wav(1.0)[:40], "not audio"),  # a truncated header
    ],
)
def test_files_that_are_not_audio_are_input_errors_naming_the_file(data, words):
    with pytest.raises(InputError) as error:
        decode_audio(data, 60)
    assert error.value.param == "file" and words in str(error.value)


def test_audio_past_the_limit_is_refused_while_decoding():
    with pytest.raises(InputError) as error:
        decode_audio(wav(3.0), 2.0)
    assert error.value.code == "audio_too_long" and "max_audio_seconds" in str(error.value)
    assert decode_audio(wav(2.0), 2.0).size == 2 * RATE


def test_the_runtime_is_a_transcription_model_that_streams_language_first(runtime):
    assert isinstance(runtime, TranscriptionModel)
    parts = list(runtime.transcribe_stream(TranscriptionRequest(wav(3.0), language="en")))
    assert parts[0].language == "en" and parts[0].duration == pytest.approx(3.0)
    assert parts[0].segment is None and all(p.segment for p in parts[1:])
    whole = runtime.transcribe(TranscriptionRequest(wav(3.0), language="en"))
    assert whole == transcript(parts) and whole.text


def test_the_same_audio_gives_the_same_text_and_fallback_climbs_the_ladder(tmp_path, runtime):
    request = TranscriptionRequest(wav(2.0), language="en")
    first = runtime.transcribe(request)
    assert runtime.transcribe(request) == first
    assert {s.temperature for s in first.segments} == {0.0}
    folder = build_tiny_whisper(tmp_path / "tiny")
    climbing = WhisperRuntime(str(folder), WhisperOptions(beam_size=1, threads=1, fallback=True))
    climbing.load()  # the random model's repeats make each window go up the ladder
    assert max(s.temperature for s in climbing.transcribe(request).segments) > 0


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"language": "xx"}, "language"),
        ({"temperature": 1.5}, "temperature"),
        ({"task": "summarise"}, "task"),
    ],
)
def test_bad_fields_are_input_errors_naming_them(runtime, fields, param):
    with pytest.raises(InputError) as error:
        runtime.transcribe(TranscriptionRequest(wav(1.0), **fields))
    assert error.value.param == param


def test_words_come_with_times_inside_their_segment(runtime):
    result = runtime.transcribe(TranscriptionRequest(wav(3.0), language="en", words=True))
    words = [w for s in result.segments for w in s.words]
    assert words and all(0 <= w.start <= w.end for w in words)


SEGMENTS = (
    Segment(0, 0.0, 1.5, " Hello there."),
    Segment(1, 1.5, 3723.25, " General Kenobi."),
)
RESULT = Transcription("Hello there. General Kenobi.", "en", 3724.0, SEGMENTS)


def test_srt_and_vtt_cues_are_the_segments():
    assert srt(RESULT) == (
        "1\n00:00:00,000 --> 00:00:01,500\nHello there.\n\n"
        "2\n00:00:01,500 --> 01:02:03,250\nGeneral Kenobi.\n"
    )
    assert vtt(RESULT) == (
        "WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nHello there.\n\n"
        "00:00:01.500 --> 01:02:03.250\nGeneral Kenobi.\n"
    )


def test_verbose_json_reads_back_as_the_same_transcription():
    body = msgspec.json.encode(verbose(RESULT, "transcribe", ()))
    assert from_verbose(body) == RESULT


def test_the_fold_takes_the_language_the_duration_and_the_segments_in_order():
    parts = [TranscriptPart(language="de", duration=3.0)] + [
        TranscriptPart(segment=s) for s in SEGMENTS
    ]
    assert transcript(parts) == Transcription("Hello there. General Kenobi.", "de", 3.0, SEGMENTS)


def test_a_ctranslate2_folder_is_a_whisper_model(tmp_path: Path):
    assert runtime_for_files(["model.bin", "config.json", "vocabulary.json"]) == "whisper"
    assert runtime_for_files(["model.bin", "vocabulary.txt", "tokenizer.json"]) == "whisper"
    assert missing_library("whisper", lambda m: m != "faster_whisper") == (
        "the whisper runtime needs faster_whisper, which is not installed: "
        "pip install 'localoip[audio]'"
    )
