"""A lighter install: a runtime whose library is missing names the extra to install."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import httpx
import pytest
from localoip.runtimes.catalogue import RUNTIMES, missing_library
from localoip.runtimes.llamacpp.build import requirement
from support.configs import model_toml, tiny_chat
from support.paths import REPO
from support.servers import stop_server


def test_every_local_runtime_names_its_extra_when_its_library_is_missing():
    assert missing_library("sentence-transformers", lambda m: m != "sentence_transformers") == (
        "the sentence-transformers runtime needs sentence_transformers, which is not "
        "installed: pip install 'localoip[embeddings]'"
    )
    assert "localoip[llama]" in missing_library("llama-cpp", lambda m: False)
    assert "torch and transformers and diffusers, which are not" in missing_library(
        "diffusers", lambda m: False
    )


def test_installed_libraries_and_remote_runtimes_need_nothing():
    for runtime in RUNTIMES:
        assert missing_library(runtime) is None  # this venv has every extra


def test_each_extra_named_is_declared_in_pyproject():
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    named = {kind.extra.name for kind in RUNTIMES.values() if kind.extra}
    assert named <= set(extras)
    assert set(extras["all"][0].split("[")[1].rstrip("]").split(",")) == named | {"demo"}


def test_the_llama_build_still_finds_llama_cpp_python_among_the_extras():
    assert requirement() == "llama-cpp-python>=0.3.36,<0.4"


@pytest.fixture(scope="module")
def llama_only_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with `localoip[llama]` only: llama-cpp-python from the local wheel
    cache (runtimes/llamacpp/build.py), and no torch."""
    venv = tmp_path_factory.mktemp("llama-only") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    subprocess.run(
        [python, str(REPO / "runtimes" / "llamacpp" / "build.py")], check=True, timeout=1200
    )
    pip = [python, "-m", "pip", "install", "-q", f"{REPO}[llama]"]
    subprocess.run(pip, check=True, timeout=1200)
    return venv


@pytest.mark.slow
def test_a_llama_only_install_has_no_torch(llama_only_venv):
    python = llama_only_venv / "bin" / "python"
    done = subprocess.run([python, "-c", "import torch"], capture_output=True)
    assert done.returncode != 0


@pytest.mark.slow
def test_a_llama_only_install_serves_gguf_chat_and_names_the_missing_extra(
    llama_only_venv, tiny_dir, tmp_path, launch
):
    config = tmp_path / "models.toml"
    config.write_text(
        tiny_chat(tiny_dir)
        + model_toml(
            "st", "sentence-transformers", str(tiny_dir / "tiny-rerank"), kind="cross-encoder"
        )
        + model_toml("sd", "diffusers", str(tiny_dir / "tiny-sd"))
    )
    server = launch(config, localoip=llama_only_venv / "bin" / "localoip")
    try:
        chat = httpx.post(
            server.url + "/v1/chat/completions",
            json={
                "model": "tiny-chat",
                "messages": [{"role": "user", "content": "Hi"}],
                "max_tokens": 3,
            },
            timeout=60,
        )
        index = {m["name"]: m for m in httpx.post(server.url + "/v2/repository/index").json()}
    finally:
        stop_server(server)
    assert chat.status_code == 200, chat.text
    assert index["st"]["state"] == "UNAVAILABLE"
    assert "pip install 'localoip[embeddings]'" in index["st"]["reason"]
    assert "pip install 'localoip[images]'" in index["sd"]["reason"]
    assert "Traceback" not in server.logs()
