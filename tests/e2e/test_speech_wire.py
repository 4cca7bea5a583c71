"""Speech to text over a socket: a real `localoip serve` whose tiny Whisper runs in its own
runner process, called with `curl -F` and the openai SDK; and a second server whose `openai`
remote model forwards transcriptions to the first."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from openai import BadRequestError, OpenAI
from support.audio_files import wav
from support.configs import model_toml, tiny_chat
from support.servers import Server, Servers
from support.tiny_whisper import build_tiny_whisper

WHISPER = {"beam_size": 1, "threads": 1}


@pytest.fixture(scope="module")
def upstream(servers: Servers, tiny_dir: Path, tmp_path_factory) -> Iterator[Server]:
    folder = build_tiny_whisper(tmp_path_factory.mktemp("whisper") / "tiny-whisper")
    config = model_toml("tiny-whisper", "whisper", str(folder), **WHISPER) + tiny_chat(tiny_dir)
    with servers.shared(config) as running:
        yield running


@pytest.fixture(scope="module")
def front(servers: Servers, upstream: Server) -> Iterator[Server]:
    config = model_toml(
        "remote-whisper",
        "openai",
        f"{upstream.url}/v1",
        model="tiny-whisper",
        capabilities=["transcribe"],
    )
    with servers.shared(config) as running:
        yield running


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("audio") / "clip.wav"
    path.write_bytes(wav(4.0))
    return path


def curl(url: str, *fields: str) -> subprocess.CompletedProcess:
    args = ["curl", "-s", "-w", "\n%{http_code}", url]
    for field in fields:
        args += ["-F", field]
    return subprocess.run(args, capture_output=True, text=True, check=True, timeout=120)


def test_curl_form_upload_transcribes_in_the_runner_process(upstream, clip):
    url = f"{upstream.url}/v1/audio/transcriptions"
    done = curl(url, f"file=@{clip}", "model=tiny-whisper")
    body, status = done.stdout.rsplit("\n", 1)
    assert status == "200" and json.loads(body)["text"]
    srt = curl(url, f"file=@{clip}", "model=tiny-whisper", "response_format=srt")
    text, status = srt.stdout.rsplit("\n", 1)
    assert status == "200" and text.startswith("1\n00:00:")
    bad = curl(url, "file=@/etc/hostname", "model=tiny-whisper")
    error, status = bad.stdout.rsplit("\n", 1)
    assert status == "400" and json.loads(error)["error"]["param"] == "file"
    again = curl(url, f"file=@{clip}", "model=tiny-whisper")
    assert again.stdout.rsplit("\n", 1)[0] == body  # still serving, and the same text


def test_the_openai_sdk_over_a_socket_streamed_and_not(upstream, clip):
    client = OpenAI(base_url=f"{upstream.url}/v1", api_key="x", max_retries=0)
    with clip.open("rb") as audio:
        whole = client.audio.transcriptions.create(model="tiny-whisper", file=audio)
    with clip.open("rb") as audio:
        events = list(
            client.audio.transcriptions.create(model="tiny-whisper", file=audio, stream=True)
        )
    assert events[-1].type == "transcript.text.done" and events[-1].text == whole.text
    assert "".join(e.delta for e in events[:-1]).strip() == whole.text


def test_a_remote_openai_model_forwards_transcriptions(upstream, front, clip):
    direct = OpenAI(base_url=f"{upstream.url}/v1", api_key="x", max_retries=0)
    relayed = OpenAI(base_url=f"{front.url}/v1", api_key="x", max_retries=0)
    audio = ("clip.wav", clip.read_bytes())
    fields = {"response_format": "verbose_json", "language": "en"}
    expected = direct.audio.transcriptions.create(model="tiny-whisper", file=audio, **fields)
    got = relayed.audio.transcriptions.create(model="remote-whisper", file=audio, **fields)
    assert got.text == expected.text and got.language == "en"
    assert [s.end for s in got.segments] == [s.end for s in expected.segments]
    streamed = list(
        relayed.audio.transcriptions.create(model="remote-whisper", file=audio, stream=True)
    )
    assert (
        streamed[-1].text
        == direct.audio.transcriptions.create(model="tiny-whisper", file=audio).text
    )
    translated = relayed.audio.translations.create(model="remote-whisper", file=audio)
    assert translated.text
    with pytest.raises(BadRequestError) as refused:
        relayed.audio.transcriptions.create(model="remote-whisper", file=("a.wav", b"junk" * 9))
    assert refused.value.param == "file"  # the upstream's own 400, relayed


def test_tritonclient_sends_the_audio_as_binary_bytes(upstream, clip):
    import numpy as np
    import tritonclient.http as triton

    client = triton.InferenceServerClient(upstream.host)
    audio = triton.InferInput("audio", [1], "BYTES")
    audio.set_data_from_numpy(np.array([clip.read_bytes()], dtype=object))  # binary by default
    answer = client.infer("tiny-whisper", [audio], parameters={"language": "en"})
    text = answer.as_numpy("text")[0].decode()
    sdk = OpenAI(base_url=f"{upstream.url}/v1", api_key="x", max_retries=0)
    audio_file = ("clip.wav", clip.read_bytes())
    expected = sdk.audio.transcriptions.create(model="tiny-whisper", file=audio_file, language="en")
    assert text == expected.text
