"""`localoip --version`, `ls` (alias `models`), and `ps`, `load` and `unload` as thin clients
of a real server's repository API, with its API key."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest
from localoip.app.cli.client import server_url
from localoip.app.cli.model_commands import ps_rows
from support.configs import model_toml, tiny_chat
from support.paths import LOCALOIP
from support.servers import Server, Servers, free_port

KEY = "test-key-16"


def localoip(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LOCALOIP), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env},
    )


@pytest.fixture(scope="module")
def keyed_server(servers: Servers, tiny_dir: Path) -> Iterator[Server]:
    """The tiny chat model and one that cannot load, behind an API key."""
    config = tiny_chat(tiny_dir) + model_toml("missing", "llama-cpp", "absent.gguf")
    with servers.shared(config, env={"LOCALOIP_API_KEY": KEY}) as server:
        yield server


def ps(server: Server, *args: str) -> subprocess.CompletedProcess:
    return localoip("ps", "--url", server.url, *args, LOCALOIP_API_KEY=KEY)


def state_of(server: Server, name: str) -> str:
    done = ps(server)
    assert done.returncode == 0, done.stderr
    return next(line.split()[1] for line in done.stdout.splitlines() if line.split()[0] == name)


def test_version_prints_the_installed_version():
    done = localoip("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"localoip {version('localoip')}"


def test_ls_lists_configured_models_and_whether_their_files_are_here(tiny_config):
    done = localoip("ls", "--config", str(tiny_config))
    assert done.returncode == 0, done.stderr
    header, *rows = done.stdout.splitlines()
    assert header.split() == ["NAME", "RUNTIME", "SOURCE", "PRESENT"]
    present = {row.split()[0]: row.split()[3] for row in rows}
    assert present["tiny-chat"] == "yes" and present["missing"] == "no"
    assert present["hub-offline"] == "no"


def test_models_is_the_same_command_as_ls(tiny_config):
    assert localoip("models", "--config", str(tiny_config)).stdout == (
        localoip("ls", "--config", str(tiny_config)).stdout
    )


def test_ls_with_a_bad_config_is_one_line(tmp_path):
    bad = tmp_path / "models.toml"
    bad.write_text('[[models]]\nname = "x"\nruntime = "llama-cpp"\nsource = "hf:nobody"\n')
    done = localoip("ls", "--config", str(bad))
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "source" in done.stderr


def test_ps_shows_each_model_with_its_state_and_reason(keyed_server):
    done = ps(keyed_server)
    assert done.returncode == 0, done.stderr
    header, *rows = done.stdout.splitlines()
    assert header.split() == [
        *("NAME", "STATE", "PID", "RESTARTS", "CONTEXT_LENGTH", "MAX_CONTEXT_LENGTH"),
        *("QUANTIZATION", "FILE_SIZE", "REASON"),
    ]  # no model has crashed or downloads, so no LAST_CRASH or download columns
    by_name = {row.split()[0]: row for row in rows}
    state, pid, restarts, context, trained, quant, size, reason = by_name["tiny-chat"].split()[1:]
    assert (state, restarts, reason) == ("READY", "0", "-")
    assert (context, trained, quant) == ("512", "2048", "F32") and int(size) > 0
    assert (Path("/proc") / pid / "cmdline").read_bytes().split(b"\0")[3:6] == [
        b"runner",
        b"--model",
        b"tiny-chat",
    ]
    assert "UNAVAILABLE" in by_name["missing"] and "no such file" in by_name["missing"]


def test_unload_then_load_change_what_ps_shows(keyed_server):
    done = localoip("unload", "tiny-chat", "--url", keyed_server.url, LOCALOIP_API_KEY=KEY)
    assert (done.returncode, done.stdout) == (0, "tiny-chat: unloaded\n"), done.stderr
    assert state_of(keyed_server, "tiny-chat") == "UNAVAILABLE"
    done = localoip("load", "tiny-chat", "--url", keyed_server.url, LOCALOIP_API_KEY=KEY)
    assert (done.returncode, done.stdout) == (0, "tiny-chat: loaded\n"), done.stderr
    assert state_of(keyed_server, "tiny-chat") == "READY"


def test_localoip_host_points_the_commands_at_a_server(keyed_server):
    done = localoip("ps", LOCALOIP_HOST=keyed_server.host, LOCALOIP_API_KEY=KEY)
    assert done.returncode == 0, done.stderr
    assert "tiny-chat" in done.stdout


def test_load_of_an_unknown_model_is_the_servers_error_in_one_line(keyed_server):
    done = localoip("load", "nope", "--url", keyed_server.url, LOCALOIP_API_KEY=KEY)
    assert done.returncode == 1
    assert done.stderr.startswith("localoip: load nope: ") and "(HTTP 404)" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_load_of_a_model_that_fails_gives_its_reason(keyed_server):
    done = localoip("load", "missing", "--url", keyed_server.url, LOCALOIP_API_KEY=KEY)
    assert done.returncode == 1
    assert "failed to load" in done.stderr and "no such file" in done.stderr


def test_without_the_api_key_the_commands_say_which_variable_to_set(keyed_server):
    env = {k: v for k, v in os.environ.items() if k != "LOCALOIP_API_KEY"}
    done = subprocess.run(
        [str(LOCALOIP), "ps", "--url", keyed_server.url], capture_output=True, text=True, env=env
    )
    assert done.returncode == 1
    assert "(HTTP 401)" in done.stderr and "set $LOCALOIP_API_KEY" in done.stderr


def test_a_wrong_api_key_is_refused(keyed_server):
    done = localoip("unload", "tiny-chat", "--url", keyed_server.url, LOCALOIP_API_KEY="wrong")
    assert done.returncode == 1 and "(HTTP 401)" in done.stderr
    assert state_of(keyed_server, "tiny-chat") == "READY"


@pytest.mark.parametrize("command", [["ps"], ["load", "x"], ["unload", "x"]])
def test_no_server_is_one_line_saying_how_to_start_one(command):
    url = f"http://127.0.0.1:{free_port()}"
    done = localoip(*command, "--url", url)
    assert done.returncode == 1
    assert f"no localoip server answers at {url}" in done.stderr
    assert "localoip serve" in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_server_url_takes_a_host_and_port_or_a_url(monkeypatch):
    monkeypatch.delenv("LOCALOIP_HOST", raising=False)
    assert server_url() == "http://127.0.0.1:9000"
    monkeypatch.setenv("LOCALOIP_HOST", "0.0.0.0:9100")
    assert server_url() == "http://0.0.0.0:9100"
    assert server_url("https://box:8443/") == "https://box:8443"


def test_ps_leaves_out_a_field_no_model_has_and_the_copy_of_the_context_length():
    a = {"name": "a", "state": "READY", "reason": "", "context_length": 512, "max_model_len": 512}
    b = {"name": "b", "state": "LOADING", "reason": "", "context_length": None}
    a |= {"download": None, "runner": {"pid": 7, "last_crash": None}}
    b |= {"download": {"file": "b.gguf", "done": 5}, "runner": None}
    assert ps_rows([a, b]) == [
        ["NAME", "STATE", "CONTEXT_LENGTH", "PID", "FILE", "DONE", "REASON"],
        ["a", "READY", "512", "7", "-", "-", "-"],
        ["b", "LOADING", "-", "-", "b.gguf", "5", "-"],
    ]


def test_ps_prints_fields_a_server_adds_in_columns_and_dashes_where_absent():
    rows = ps_rows(
        [
            {"name": "a", "version": "1", "state": "READY", "reason": "", "pid": 41, "rss": "1 GB"},
            {"name": "bb", "version": "1", "state": "UNAVAILABLE", "reason": "unloaded"},
        ]
    )
    assert rows == [
        ["NAME", "STATE", "PID", "RSS", "REASON"],
        ["a", "READY", "41", "1 GB", "-"],
        ["bb", "UNAVAILABLE", "-", "-", "unloaded"],
    ]


def test_ps_shows_which_models_read_images_only_when_one_does():
    a = {"name": "a", "state": "READY", "reason": "", "vision": True}
    b = {"name": "b", "state": "READY", "reason": "", "vision": False}
    assert ps_rows([a, b]) == [
        ["NAME", "STATE", "VISION", "REASON"],
        ["a", "READY", "yes", "-"],
        ["b", "READY", "-", "-"],
    ]
    assert ps_rows([b])[0] == ["NAME", "STATE", "REASON"]
