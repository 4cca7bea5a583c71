"""The Speech tab in Debian's Chromium against a real server with the tiny Whisper: a file
chosen with the file input is transcribed, its lines stream in with their times and the
result keeps its audio and a run card; a recording from Chromium's fake microphone
(MediaRecorder) is transcribed the same way."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from support.audio_files import wav
from support.browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    close_page,
    needs_chromium,
    open_page,
    shoot,
    tab,
)
from support.configs import model_toml
from support.servers import Server, Servers
from support.tiny_whisper import build_tiny_whisper

pytestmark = needs_chromium

DONE = '#speech-results article[data-status="done"]'


@pytest.fixture(scope="module")
def speech_server(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = build_tiny_whisper(tmp_path_factory.mktemp("whisper") / "tiny-whisper")
    config = '[server]\nstore_path = "store.db"\n\n' + model_toml(
        "tiny-whisper", "whisper", str(folder), beam_size=1, threads=1
    )
    with servers.shared(config) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """This module's Chromium has a fake microphone (a beeping tone) that needs no permission
    prompt (one Playwright a module: its sync API keeps an event loop on the main thread)."""
    if not CHROMIUM.exists():
        pytest.skip("needs /usr/bin/chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    fake = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=[*CHROMIUM_ARGS, *fake]
        )
        yield launched
        launched.close()


@pytest.fixture
def window(browser: Any, speech_server: Server) -> Iterator[Any]:
    opened = open_page(browser, speech_server)
    yield opened
    close_page(opened)


def test_a_chosen_file_is_transcribed_with_times_audio_and_a_run_card(window):
    speech = tab(window, "Speech")
    speech.get_by_label("Language").fill("en")
    speech.locator("#speech-file").set_input_files(
        [{"name": "talk.wav", "mimeType": "audio/wav", "buffer": wav(4.0)}]
    )
    speech.get_by_role("button", name="Transcribe").click()
    result = window.locator(DONE).filter(has_text="talk.wav").first
    result.wait_for()
    lines = result.locator(".speech-line")
    assert lines.count() >= 1
    assert lines.first.locator(".stamp").text_content().startswith("0:00.")
    assert result.locator("audio").get_attribute("src").endswith("/audio")
    result.get_by_text("Run card").click()
    assert "talk.wav, audio/wav" in result.locator(".speech-run-card").text_content()
    shoot(window, "speech-file")
    window.reload()  # kept: the result is in the store
    tab(window, "Speech")
    assert window.locator(DONE).count() >= 1


RECORDED_A_SECOND = "() => /Recording… [1-9]/.test($('#speech-record-state').textContent)"


def test_a_recording_from_the_microphone_is_transcribed(window):
    speech = tab(window, "Speech")
    speech.get_by_role("button", name="Record", exact=True).click()
    window.wait_for_function(RECORDED_A_SECOND.replace("$", "document.querySelector"))
    speech.get_by_role("button", name="Stop recording").click()
    window.wait_for_function(
        "() => document.getElementById('speech-file').files[0]?.name.startsWith('recording.')"
    )
    speech.get_by_role("button", name="Transcribe").click()
    result = window.locator(DONE).filter(has_text="recording.").first
    result.wait_for()  # a recording as webm (Chromium's MediaRecorder), decoded by PyAV
    assert result.locator(".speech-line").count() >= 1
