"""Fixtures every depth shares: the tiny models, built once a session, and their models.toml.

The real-server fixtures live in e2e/conftest.py, the in-process app's in api/conftest.py, and
the helpers behind both in support/."""

from __future__ import annotations

from pathlib import Path

import pytest
import support  # noqa: F401  (keeps the tests offline and out of the user's data folder)
from support.configs import tiny_config_text
from support.families import FAMILIES
from support.scripted import build_examples
from support.tiny_models import build_tiny_cross_encoder, build_tiny_gguf, build_tiny_sd


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tiny.gguf, slow.gguf, tiny-sd/ and tiny-rerank/, built offline."""
    folder = tmp_path_factory.mktemp("tiny")
    build_tiny_gguf(folder / "tiny.gguf")
    build_tiny_gguf(
        folder / "slow.gguf", name="slow-random-llama", n_embd=384, n_ff=1024, n_layer=8
    )
    build_tiny_sd(folder / "tiny-sd")
    build_tiny_cross_encoder(folder / "tiny-rerank")
    return folder


@pytest.fixture(scope="session")
def tiny_config(tiny_dir: Path) -> Path:
    """The models.toml of support.configs.tiny_config_text, beside the tiny models."""
    config = tiny_dir / "models.toml"
    config.write_text(tiny_config_text(tiny_dir))
    return config


@pytest.fixture(scope="session")
def scripted_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every family's example replies as scripted GGUFs (support.scripted.build_examples):
    `<family>-<example>.gguf`, such as qwen3-thinking.gguf."""
    folder = tmp_path_factory.mktemp("scripted")
    build_examples(folder, list(FAMILIES.values()))
    return folder
