"""The Speech tab in process: an uploaded file is transcribed as a job whose lines stream in
with their times, the result is kept with its audio and a run card, and bad uploads are
refused in words."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.audio_files import encode, tone, wav
from support.configs import model_toml, tiny_chat
from support.inprocess import InProcessApp
from support.playground import PAGE, frames
from support.tiny_whisper import build_tiny_whisper


@pytest.fixture(scope="module")
def speech_app(apps, tiny_dir: Path, tmp_path_factory) -> Iterator[InProcessApp]:
    folder = build_tiny_whisper(tmp_path_factory.mktemp("whisper") / "tiny-whisper")
    config = (
        '[server]\nstore_path = "store.db"\n\n'
        + model_toml("tiny-whisper", "whisper", str(folder), beam_size=1, threads=1)
        + tiny_chat(tiny_dir)
    )
    with apps.shared(config) as running:
        yield running


@pytest.fixture
def http(speech_app: InProcessApp) -> Iterator[httpx.Client]:
    with speech_app.client() as client:
        yield client


def upload(http: httpx.Client, audio: bytes, name: str = "talk.wav", **form: str) -> httpx.Response:
    data = {"model": "tiny-whisper", "language": "en", "task": "transcribe", **form}
    return http.post(
        "/ui/speech", data=data, files={"file": (name, audio, "audio/wav")}, headers=PAGE
    )


def job_of(html: str) -> str:
    return re.search(r'sse-connect="/ui/speech/([^/"]+)/stream"', html)[1]


def test_a_file_streams_its_lines_then_the_result_with_a_run_card(http):
    audio = wav(4.0)
    started = upload(http, audio)
    assert started.status_code == 200 and 'aria-busy="true"' in started.text
    job = job_of(started.text)
    events = list(frames(http, job, kind="speech"))
    lines = [e["data"] for e in events if e.get("event") == "segment"]
    assert lines and all(re.search(r"\d:\d\d\.\d → \d:\d\d\.\d", line) for line in lines)
    done = events[-1]
    assert done["event"] == "done" and 'data-status="done"' in done["data"]
    assert "Run card" in done["data"] and hashlib.sha256(audio).hexdigest() in done["data"]
    # the page's text is what /v1 gives for the same audio
    expected = http.post(
        "/v1/audio/transcriptions",
        data={"model": "tiny-whisper", "language": "en"},
        files={"file": ("talk.wav", audio)},
    ).json()["text"]
    said = "".join(re.findall(r'<span class="said">([^<]*)</span>', done["data"]))
    assert re.sub(r"\s", "", said) == re.sub(r"\s", "", expected)  # each line is trimmed
    kept = http.get(f"/ui/speech/{job}/audio")
    assert kept.content == audio and kept.headers["content-type"].startswith("audio/wav")
    page = http.get("/").text
    assert f'id="speech-job-{job}"' in page and 'id="tab-speech"' in page


def test_a_recording_from_the_browser_is_webm_and_is_transcribed(http):
    recorded = encode(tone(2.0, 48000), 48000, "webm")
    job = job_of(upload(http, recorded, "recording.webm").text)
    done = list(frames(http, job, kind="speech"))[-1]
    assert 'data-status="done"' in done["data"] and "recording.webm" in done["data"]


def test_bad_uploads_are_refused_in_words(http):
    chat = upload(http, wav(1.0), model="tiny-chat")
    assert chat.status_code == 400 and "cannot transcribe speech" in chat.text
    empty = upload(http, b"")
    assert empty.status_code == 400 and "is empty" in empty.text
    none = http.post(
        "/ui/speech", data={"model": "tiny-whisper"}, files={"x": ("a", b"1")}, headers=PAGE
    )
    assert none.status_code == 400 and "Record something" in none.text
    junk = job_of(upload(http, b"not audio at all" * 20, "notes.txt").text)
    done = list(frames(http, junk, kind="speech"))[-1]
    assert 'data-status="failed"' in done["data"] and "not audio" in done["data"]
    assert upload(http, wav(1.0)).status_code == 200  # still serving
