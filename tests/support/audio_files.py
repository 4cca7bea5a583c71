"""Audio files for the speech tests: a generated waveform, or espeak-ng speaking a sentence,
encoded by PyAV in each container the transcription routes take."""

from __future__ import annotations

import io
import shutil
import subprocess

import numpy as np

# container -> (PyAV format, codec, sample rate the codec takes; 0: the samples' own)
CONTAINERS = {
    "wav": ("wav", "pcm_s16le", 0),
    "mp3": ("mp3", "libmp3lame", 44100),
    "flac": ("flac", "flac", 22050),
    "ogg": ("ogg", "libopus", 48000),
    "m4a": ("ipod", "aac", 44100),
    "webm": ("webm", "libopus", 48000),
}
SENTENCE = "The quick brown fox jumps over the lazy dog."


def tone(seconds: float, rate: int = 16000, stereo: bool = False) -> np.ndarray:
    """A warbling tone with a little noise, float32 in [-1, 1]: [channels, samples]."""
    t = np.arange(int(seconds * rate)) / rate
    wave = 0.3 * np.sin(2 * np.pi * (220 + 60 * np.sin(2 * np.pi * 0.5 * t)) * t)
    wave += 0.01 * np.random.default_rng(0).standard_normal(t.size)
    channels = [wave, 0.5 * wave] if stereo else [wave]
    return np.asarray(channels, dtype=np.float32)


def encode(samples: np.ndarray, rate: int, container: str) -> bytes:
    """`samples` ([channels, n] float32 at `rate`) as a file of `container` (CONTAINERS)."""
    import av

    fmt, codec, codec_rate = CONTAINERS[container]
    codec_rate = codec_rate or rate
    layout = "stereo" if samples.shape[0] == 2 else "mono"
    out = io.BytesIO()
    with av.open(out, "w", format=fmt) as file:
        stream = file.add_stream(codec, rate=codec_rate, layout=layout)
        resampler = av.AudioResampler(
            format=stream.codec_context.format, layout=layout, rate=codec_rate
        )
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(samples.T.reshape(1, -1)), format="flt", layout=layout
        )
        frame.sample_rate = rate
        for chunk in [*resampler.resample(frame), *resampler.resample(None), None]:
            for packet in stream.encode(chunk):
                file.mux(packet)
    return out.getvalue()


def wav(seconds: float, rate: int = 16000, stereo: bool = False) -> bytes:
    """A tone as a 16-bit WAV file."""
    return encode(tone(seconds, rate, stereo), rate, "wav")


def spoken(text: str = SENTENCE) -> bytes | None:
    """espeak-ng saying `text`, as its WAV (22,050 Hz mono); None where it is not installed."""
    if shutil.which("espeak-ng") is None:
        return None
    return subprocess.run(["espeak-ng", "--stdout", text], capture_output=True, check=True).stdout
