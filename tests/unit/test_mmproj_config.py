"""`mmproj` in models.toml: a llama-cpp chat model's image projector, resolved and checked."""

from __future__ import annotations

from pathlib import Path

import pytest
from localoip.app.core.config import ConfigError, load_settings


def config(tmp_path: Path, **options: str | bool) -> Path:
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    lines = "\n".join(
        f"{k} = {str(v).lower() if isinstance(v, bool) else repr(v)}" for k, v in options.items()
    )
    path = tmp_path / "models.toml"
    path.write_text(
        '[[models]]\nname = "eyes"\nruntime = "llama-cpp"\nsource = "m.gguf"\n'
        f"[models.options]\n{lines}\n"
    )
    return path


def test_mmproj_resolves_next_to_models_toml(tmp_path):
    (tmp_path / "mmproj-f16.gguf").write_bytes(b"GGUF")
    settings = load_settings(config(tmp_path, mmproj="mmproj-f16.gguf"))
    assert settings.models[0].options.mmproj == str(tmp_path / "mmproj-f16.gguf")


def test_a_missing_projector_is_a_config_error_naming_the_field_and_the_path(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_settings(config(tmp_path, mmproj="absent.gguf"))
    message = str(caught.value)
    assert "'eyes'" in message and "options.mmproj" in message
    assert str(tmp_path / "absent.gguf") in message


def test_an_embedding_model_takes_no_projector(tmp_path):
    (tmp_path / "p.gguf").write_bytes(b"GGUF")
    with pytest.raises(ConfigError, match="mmproj is for chat models"):
        load_settings(config(tmp_path, mmproj="p.gguf", embedding=True))


def test_a_model_without_mmproj_has_none(tmp_path):
    assert load_settings(config(tmp_path)).models[0].options.mmproj is None
