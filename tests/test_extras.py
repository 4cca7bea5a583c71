"""A lighter install: a runtime whose library is missing names the extra to install."""

from __future__ import annotations

import tomllib

from conftest import REPO
from localoip.app.llama_build import requirement
from localoip.runtimes.extras import EXTRAS, missing_library
from localoip.runtimes.options import RUNTIME_OPTIONS


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
    for runtime in RUNTIME_OPTIONS:
        assert missing_library(runtime) is None  # this venv has every extra


def test_each_extra_named_is_declared_in_pyproject():
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert {need.extra for need in EXTRAS.values()} <= set(extras)
    assert set(extras["all"][0].split("[")[1].rstrip("]").split(",")) == {
        "llama",
        "embeddings",
        "images",
        "demo",
    }


def test_the_llama_build_still_finds_llama_cpp_python_among_the_extras():
    assert requirement() == "llama-cpp-python>=0.3.36,<0.4"
