"""Real-time factor of three Whisper libraries on this CPU: the measurement that chose one.

One random-weight Whisper with whisper-tiny's sizes (tests/support/tiny_whisper.py: 384 wide,
4 + 4 layers, 51,865 tokens; the same compute as openai/whisper-tiny) is built once and
written in each library's own format: a transformers folder, its CTranslate2 conversion
(faster-whisper) and whisper.cpp's ggml file (pywhispercpp). Each transcribes the same 30 s
of audio, greedy, without timestamps, with its decode capped at the same number of tokens
(the random model never says <|endoftext|>, so every run decodes exactly that many), on 2
threads. Prints seconds per run (median) and the real-time factor (seconds / 30).

    python bench/whisper_rtf.py --runs 3 --tokens 100
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.tiny_whisper import TEXT_TOKENS, TINY, build_hf_whisper, convert_ct2, write_ggml

SECONDS = 30
RATE = 16000
THREADS = 2


def audio() -> np.ndarray:
    """30 s of a warbling tone with some noise, float32 at 16 kHz."""
    t = np.arange(SECONDS * RATE) / RATE
    rng = np.random.default_rng(0)
    tone = 0.3 * np.sin(2 * np.pi * (200 + 50 * np.sin(2 * np.pi * 0.7 * t)) * t)
    return (tone + 0.02 * rng.standard_normal(t.size)).astype(np.float32)


def transformers_run(folder: Path, tokens: int) -> Callable[[np.ndarray], int]:
    import torch
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    torch.set_num_threads(THREADS)
    proc = WhisperProcessor.from_pretrained(folder)
    model = WhisperForConditionalGeneration.from_pretrained(folder).eval()

    def run(samples: np.ndarray) -> int:
        feats = proc(samples, sampling_rate=RATE, return_tensors="pt").input_features
        with torch.inference_mode():
            out = model.generate(feats, max_new_tokens=tokens, language="en", task="transcribe")
        return int((out[0] < TEXT_TOKENS).sum())

    return run


def faster_whisper_run(folder: Path, tokens: int, compute: str) -> Callable[[np.ndarray], int]:
    from faster_whisper import WhisperModel

    model = WhisperModel(str(folder), device="cpu", cpu_threads=THREADS, compute_type=compute)

    def run(samples: np.ndarray) -> int:
        segments, _ = model.transcribe(
            samples,
            language="en",
            beam_size=1,
            temperature=0.0,
            without_timestamps=True,
            # CTranslate2 decodes at most max_length / 2 tokens (Whisper's sample_len rule):
            # measured, max_length 104 -> 52 tokens, 200 -> 100, 440 -> 220.
            max_new_tokens=2 * tokens - 4,
            condition_on_previous_text=False,
            compression_ratio_threshold=None,
            log_prob_threshold=None,
            no_speech_threshold=None,
        )
        return sum(len(s.tokens) for s in segments)

    return run


def whisper_cpp_run(path: Path, tokens: int) -> Callable[[np.ndarray], int]:
    import _pywhispercpp as pw
    from pywhispercpp.model import Model

    model = Model(
        str(path),
        n_threads=THREADS,
        print_progress=False,
        print_realtime=False,
        redirect_whispercpp_logs_to=None,
    )

    def run(samples: np.ndarray) -> int:
        model.transcribe(
            samples,
            language="en",
            no_timestamps=True,
            max_tokens=tokens,
            temperature_inc=0.0,
            entropy_thold=0.0,
            logprob_thold=-1e9,
            no_context=True,
        )
        ctx = model._ctx
        return sum(
            pw.whisper_full_get_token_id(ctx, i, j) < TEXT_TOKENS
            for i in range(pw.whisper_full_n_segments(ctx))
            for j in range(pw.whisper_full_n_tokens(ctx, i))
        )

    return run


LIBRARIES = {
    "transformers (torch, fp32)": "hf",
    "faster-whisper (CTranslate2, int8)": "ct2-int8",
    "faster-whisper (CTranslate2, fp32)": "ct2",
    "pywhispercpp (whisper.cpp, f16)": "ggml-f16.bin",
}


def runner(name: str, path: Path, tokens: int) -> Callable[[np.ndarray], int]:
    """The transcribe call of library `name` on its model at `path`."""
    if name.startswith("transformers"):
        return transformers_run(path, tokens)
    if name.startswith("faster-whisper"):
        return faster_whisper_run(path, tokens, "int8" if "int8" in name else "float32")
    return whisper_cpp_run(path, tokens)


def one(name: str, path: Path, tokens: int, runs: int) -> None:
    """Time one library in this process (alone: no other library's thread pool spins here)."""
    run = runner(name, path, tokens)
    samples = audio()
    run(samples)  # warm-up
    for _ in range(runs):
        start = time.perf_counter()
        count = run(samples)
        print(json.dumps({"seconds": time.perf_counter() - start, "tokens": count}), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="timed runs per library per round")
    ap.add_argument("--rounds", type=int, default=2, help="libraries take turns, this often")
    ap.add_argument("--tokens", type=int, default=100)
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--path", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        one(args.one, Path(args.path), args.tokens, args.runs)
        return
    with tempfile.TemporaryDirectory() as tmp:
        hf = build_hf_whisper(Path(tmp) / "hf", TINY)
        convert_ct2(hf, Path(tmp) / "ct2-int8", "int8")
        convert_ct2(hf, Path(tmp) / "ct2", None)
        write_ggml(hf, Path(tmp) / "ggml-f16.bin")
        loads = [os.getloadavg()[0]]
        times: dict[str, list[float]] = {name: [] for name in LIBRARIES}
        counts: dict[str, int] = {}
        for _ in range(args.rounds):
            for name, file in LIBRARIES.items():
                cmd = [sys.executable, __file__, "--one", name, "--path", str(Path(tmp) / file)]
                cmd += ["--tokens", str(args.tokens), "--runs", str(args.runs)]
                out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
                for line in out.splitlines():
                    if line.startswith("{"):
                        row = json.loads(line)
                        times[name].append(row["seconds"])
                        counts[name] = row["tokens"]
                loads.append(os.getloadavg()[0])
        print(
            f"{THREADS} threads; {args.tokens} tokens; "
            f"load average {min(loads):.2f}-{max(loads):.2f}"
        )
        print("| library | tokens decoded | seconds (median, min-max) | real-time factor |")
        print("|---|---|---|---|")
        for name, secs in times.items():
            mid = statistics.median(secs)
            spread = f"{min(secs):.2f}-{max(secs):.2f}"
            print(f"| {name} | {counts[name]} | {mid:.2f} ({spread}) | {mid / SECONDS:.3f} |")


if __name__ == "__main__":
    main()
