"""Speech to text over HTTP, in process: a tiny random-weight Whisper (faster-whisper's format)
behind /v1/audio/transcriptions and /translations, /openai/v1 and the Seldon sub-routes; each
container, each response_format, streaming, the openai SDK, and bad input in OpenAI's shape."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from support.audio_files import CONTAINERS, encode, spoken, tone, wav
from support.configs import model_toml, tiny_chat
from support.inprocess import Apps, InProcessApp
from support.tiny_whisper import build_tiny_whisper

MAX_BYTES = 4 * 1024 * 1024
WHISPER = {"beam_size": 1, "threads": 1, "max_audio_bytes": MAX_BYTES}


@pytest.fixture(scope="session")
def whisper_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_whisper(tmp_path_factory.mktemp("whisper") / "tiny-whisper")


@pytest.fixture(scope="module")
def app(apps: Apps, whisper_dir: Path, tiny_dir: Path) -> Iterator[InProcessApp]:
    config = model_toml("tiny-whisper", "whisper", str(whisper_dir), **WHISPER)
    with apps.shared(config + tiny_chat(tiny_dir)) as running:
        yield running


@pytest.fixture
def http(app: InProcessApp) -> Iterator[httpx.Client]:
    with app.client() as client:
        yield client


def transcribe(http: httpx.Client, audio: bytes, path: str = "/v1/audio/transcriptions", **fields):
    name = fields.pop("filename", "speech.wav")
    data = {"model": "tiny-whisper", **fields}
    return http.post(path, data=data, files={"file": (name, audio)})


def openai_error(response: httpx.Response, status: int, param: str | None) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] == param and error["type"] == "invalid_request_error"
    return error


@pytest.mark.parametrize("container", list(CONTAINERS))
def test_each_container_is_decoded_and_transcribed(http, container):
    audio = encode(tone(3.0, 44100, stereo=True), 44100, container)
    response = transcribe(http, audio, filename=f"speech.{container}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"text", "usage"} and body["text"].strip()
    assert body["usage"]["type"] == "duration"
    assert body["usage"]["seconds"] == pytest.approx(3.0, abs=0.05)


def test_espeak_speech_is_transcribed_when_espeak_ng_is_installed(http):
    audio = spoken()
    if audio is None:
        pytest.skip("espeak-ng is not installed")
    body = transcribe(http, audio, response_format="verbose_json").json()
    assert body["duration"] == pytest.approx(len(audio[44:]) / 2 / 22050, abs=0.05)
    assert body["text"] and body["segments"]


def test_the_same_audio_gives_the_same_text_at_temperature_0(http):
    audio = wav(4.0)
    first = transcribe(http, audio, temperature="0").json()["text"]
    assert first and transcribe(http, audio, temperature="0").json()["text"] == first


def test_resampled_audio_has_its_true_duration(http):
    for rate, stereo in ((8000, False), (44100, True), (48000, False)):
        body = transcribe(http, wav(2.5, rate, stereo), response_format="verbose_json").json()
        assert body["duration"] == pytest.approx(2.5, abs=0.01)


def test_text_srt_and_vtt_answer_as_text_made_of_the_segments(http):
    audio = wav(4.0)
    full = transcribe(http, audio, response_format="verbose_json").json()
    text = transcribe(http, audio, response_format="text")
    assert text.headers["content-type"].startswith("text/plain")
    assert text.text == full["text"] + "\n"
    srt = transcribe(http, audio, response_format="srt").text
    cues = srt.strip().split("\n\n")
    assert len(cues) == len(full["segments"])
    first = full["segments"][0]
    number, times, words = cues[0].split("\n")
    assert number == "1" and words == first["text"].strip()
    assert re.fullmatch(r"00:00:\d\d,\d{3} --> 00:00:\d\d,\d{3}", times)
    vtt = transcribe(http, audio, response_format="vtt")
    assert vtt.headers["content-type"].startswith("text/vtt")
    assert vtt.text.startswith("WEBVTT\n\n") and "." in vtt.text.split("\n")[2]


def test_verbose_json_has_segments_and_words_as_asked(http):
    audio = wav(4.0)
    body = transcribe(http, audio, response_format="verbose_json", language="en").json()
    assert body["task"] == "transcribe" and body["language"] == "en"
    assert body["duration"] == pytest.approx(4.0) and "words" not in body
    segment = body["segments"][0]
    assert {"id", "seek", "start", "end", "text", "tokens", "avg_logprob"} <= set(segment)
    assert all(0 <= s["start"] <= s["end"] for s in body["segments"])
    detected = transcribe(http, audio, response_format="verbose_json").json()["language"]
    assert re.fullmatch("[a-z]{2,3}", detected)  # the random model's guess, from 99
    files = {"file": ("a.wav", audio)}
    data = {"model": "tiny-whisper", "response_format": "verbose_json", "language": "en"}
    data["timestamp_granularities[]"] = ["word", "segment"]
    worded = http.post("/v1/audio/transcriptions", data=data, files=files).json()
    # word timing moves where the next window starts, so the segments may differ
    assert worded["segments"] and worded["words"]
    assert all({"word", "start", "end"} == set(w) for w in worded["words"])
    only_words = {**data, "timestamp_granularities[]": ["word"]}
    alone = http.post("/v1/audio/transcriptions", data=only_words, files=files).json()
    assert "segments" not in alone and alone["words"] == worded["words"]


def test_a_stream_sends_deltas_then_the_whole_text(http):
    audio = wav(4.0)
    whole = transcribe(http, audio).json()["text"]
    response = transcribe(http, audio, stream="true")
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [
        json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: {")
    ]
    deltas = [e["delta"] for e in events if e["type"] == "transcript.text.delta"]
    done = events[-1]
    assert done["type"] == "transcript.text.done" and done["text"] == whole
    assert len(deltas) >= 1 and "".join(deltas).strip() == whole


def test_a_60_second_clip_is_within_the_limits(http):
    body = transcribe(http, wav(60.0), response_format="verbose_json").json()
    assert body["duration"] == pytest.approx(60.0)
    assert body["segments"][-1]["end"] > 30.0  # both 30 s windows were decoded


def test_translations_answer_in_the_same_shapes(http):
    body = transcribe(
        http, wav(3.0), "/v1/audio/translations", response_format="verbose_json"
    ).json()
    assert body["task"] == "translate" and body["text"]


def test_the_openai_sdk_transcribes_streamed_and_not(app):
    client = app.openai()
    audio = ("speech.wav", wav(4.0), "audio/wav")
    result = client.audio.transcriptions.create(model="tiny-whisper", file=audio)
    assert result.text
    verbose = client.audio.transcriptions.create(
        model="tiny-whisper",
        file=audio,
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
    )
    assert verbose.text and verbose.words and verbose.segments
    text = client.audio.transcriptions.create(
        model="tiny-whisper", file=audio, response_format="text"
    )
    assert text.strip() == result.text
    events = list(client.audio.transcriptions.create(model="tiny-whisper", file=audio, stream=True))
    assert [e.type for e in events][-1] == "transcript.text.done"
    assert events[-1].text == result.text
    assert "".join(e.delta for e in events[:-1]).strip() == result.text
    translated = client.audio.translations.create(model="tiny-whisper", file=audio)
    assert translated.text


def test_every_api_prefix_answers_and_a_seldon_route_takes_its_model_from_the_url(app, http):
    audio = wav(2.0)
    expected = transcribe(http, audio).json()["text"]
    for base in ("/openai/v1", "/v2/models/tiny-whisper/infer"):
        sdk = app.openai(base)
        assert (
            sdk.audio.transcriptions.create(model="tiny-whisper", file=("a.wav", audio)).text
            == expected
        )
    seldon = "/v2/models/tiny-whisper/infer/audio/transcriptions"
    no_model = http.post(seldon, files={"file": ("a.wav", audio)})
    assert no_model.json()["text"] == expected
    other = transcribe(http, audio, seldon, model="tiny-chat")
    assert openai_error(other, 400, "model")["code"] == "model_mismatch"


# -- bad input: a 400 in OpenAI's shape, and the server still serves ---------------------------


def test_bad_input_is_a_400_in_openai_shape_and_the_server_still_serves(http):
    good = wav(2.0)
    cases = [
        (b"this is not audio at all, just some text" * 10, 400, "file"),
        (good[:60], 400, "file"),  # a truncated file: its header, no samples
        (b"", 400, "file"),
    ]
    for audio, status, param in cases:
        error = openai_error(transcribe(http, audio), status, param)
        assert error["message"]
    assert "empty" in openai_error(transcribe(http, b""), 400, "file")["message"]
    too_big = transcribe(http, b"\0" * (MAX_BYTES + 1))
    assert openai_error(too_big, 413, "file")["code"] == "file_too_large"
    unknown = transcribe(http, good, response_format="mp4")
    assert "response_format" in openai_error(unknown, 400, "response_format")["message"]
    chat = transcribe(http, good, model="tiny-chat")
    assert openai_error(chat, 400, "model")["code"] == "unsupported_capability"
    other = {"audio": ("a.wav", good)}  # multipart, without a field named file
    missing = http.post("/v1/audio/transcriptions", data={"model": "tiny-whisper"}, files=other)
    openai_error(missing, 400, "file")
    for field, value in (
        ("temperature", "hot"),
        ("temperature", "2"),
        ("language", "xx"),
        ("stream", "maybe"),
    ):
        openai_error(transcribe(http, good, **{field: value}), 400, field)
    granularity = transcribe(http, good, **{"timestamp_granularities[]": "word"})
    openai_error(granularity, 400, "timestamp_granularities[]")
    streamed = transcribe(http, b"not audio" * 20, stream="true")
    openai_error(streamed, 400, "file")  # refused before the stream starts
    assert transcribe(http, good).status_code == 200


def test_the_sdk_raises_bad_request_for_audio_that_is_not_audio(app):
    with pytest.raises(openai.BadRequestError) as raised:
        app.openai().audio.transcriptions.create(model="tiny-whisper", file=("a.wav", b"junk" * 50))
    assert raised.value.code is None and raised.value.param == "file"


def test_a_json_body_is_415_on_the_audio_routes(http):
    response = http.post("/v1/audio/transcriptions", json={"model": "tiny-whisper"})
    assert response.status_code == 415
    assert "multipart/form-data" in response.json()["error"]["message"]


# -- OIP: an `audio` BYTES input, a `text` output ---------------------------------------------


def test_oip_metadata_declares_the_audio_input_and_the_text_output(http):
    meta = http.get("/v2/models/tiny-whisper").json()
    assert meta["inputs"] == [
        {
            "name": "audio",
            "datatype": "BYTES",
            "shape": [1],
            "parameters": {"content_type": "audio"},
        }
    ]
    assert [(o["name"], o["datatype"]) for o in meta["outputs"]] == [("text", "BYTES")]
    assert meta["parameters"]["capabilities"] == ["transcribe"]


def test_oip_infer_transcribes_base64_audio_as_v1_does(http):
    audio = wav(3.0)
    expected = transcribe(http, audio, language="en").json()["text"]
    tensor = {"name": "audio", "datatype": "BYTES", "shape": [1]}
    body = {
        "inputs": [{**tensor, "data": [base64.b64encode(audio).decode()]}],
        "parameters": {"language": "en"},
    }
    answer = http.post("/v2/models/tiny-whisper/infer", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["outputs"] == [
        {"name": "text", "datatype": "BYTES", "shape": [1], "data": [expected]}
    ]
    for bad in (["not base64!"], [base64.b64encode(b"not audio" * 9).decode()]):
        refused = http.post(
            "/v2/models/tiny-whisper/infer", json={"inputs": [{**tensor, "data": bad}]}
        )
        assert refused.status_code == 400 and list(refused.json()) == ["error"]
    chat = http.post("/v2/models/tiny-chat/infer", json=body)
    assert chat.status_code == 400 and "takes inputs" in chat.json()["error"]
    assert http.post("/v2/models/tiny-whisper/infer", json=body).status_code == 200
