"""The HTTP edge's costs: the checks on every request, gzip responses, gzip request bodies.

One MiniLM server, one kept-alive connection, calls alternating with their baseline:
- the checks every request passes (Host, Origin, media type, coding), timed in this process,
  against a `GET /v2/health/live` round trip;
- `/v1/embeddings` of 16 sentences as float JSON (about 125 KB), with `Accept-Encoding: gzip`
  against `identity`: what compressing the reply costs, and how much smaller it is;
- `/v1/embeddings` as base64 (the openai SDK's default, which sends `Accept-Encoding: gzip`);
- the same request with its body gzipped against plain.
Prints p50 ratios (with ÷ without).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import time

from common import MINILM, Figure, localoip, median, model_toml, run, session
from localoip.app.http.edge.compression import check_content_coding
from localoip.app.http.edge.hosts import HostPolicy
from localoip.app.http.edge.media_types import JSON, check_media_type
from localoip.app.http.edge.origins import check_origin

SENTENCES = [f"Sentence number {i} is about a cat sitting on a mat." for i in range(16)]
FLOAT = {"model": "minilm", "input": SENTENCES, "encoding_format": "float"}
BASE64 = {**FLOAT, "encoding_format": "base64"}


async def alternate(url: str, runs: int, calls: dict[str, dict]) -> dict[str, list[float]]:
    """Each named call (kwargs of one POST or GET) in turn, `runs` times; seconds of each."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    sizes: dict[str, int] = {}
    async with session(1) as client:
        for run in range(runs + 3):  # 3 to warm up
            for name, call in calls.items():
                method = call.pop("method", "POST")
                start = time.perf_counter()
                async with client.request(
                    method, url + call["path"], auto_decompress=False, **call["args"]
                ) as reply:
                    body = await reply.read()
                elapsed = time.perf_counter() - start
                call["method"] = method
                if reply.status != call.get("status", 200):
                    raise RuntimeError(f"{name}: unexpected {reply.status}: {body[:200]!r}")
                sizes[name] = len(body)
                if run >= 3:
                    times[name].append(elapsed)
    times["sizes"] = [float(sizes[name]) for name in calls]
    return times


def checks_seconds(calls: int = 20_000) -> float:
    """Seconds per request of the edge's checks on a typical API call, in this process."""
    hosts = HostPolicy.of("127.0.0.1", ["mybox.lan"])
    start = time.perf_counter()
    for _ in range(calls):
        hosts.allows("localhost:9000")
        check_origin("POST", "http://localhost:9000", "localhost:9000", [])
        check_media_type((JSON,), "application/json; charset=utf-8")
        check_content_coding(None)
    return (time.perf_counter() - start) / calls


def measure(runs: int) -> list[Figure]:
    json_headers = {"content-type": "application/json"}
    plain = json.dumps(FLOAT).encode()
    calls = {
        "live": {
            "method": "GET",
            "path": "/v2/health/live",
            "args": {"headers": {"Host": "localhost"}},
        },
        "float identity": {
            "path": "/v1/embeddings",
            "args": {"data": plain, "headers": {**json_headers, "accept-encoding": "identity"}},
        },
        "float gzip": {
            "path": "/v1/embeddings",
            "args": {"data": plain, "headers": {**json_headers, "accept-encoding": "gzip"}},
        },
        "base64 identity": {
            "path": "/v1/embeddings",
            "args": {
                "data": json.dumps(BASE64).encode(),
                "headers": {**json_headers, "accept-encoding": "identity"},
            },
        },
        "base64 gzip": {
            "path": "/v1/embeddings",
            "args": {
                "data": json.dumps(BASE64).encode(),
                "headers": {**json_headers, "accept-encoding": "gzip"},
            },
        },
        "gzip body": {
            "path": "/v1/embeddings",
            "args": {
                "data": gzip.compress(plain),
                "headers": {
                    **json_headers,
                    "content-encoding": "gzip",
                    "accept-encoding": "identity",
                },
            },
        },
    }
    with localoip(model_toml("minilm", "sentence-transformers", MINILM, threads=2)) as server:
        times = asyncio.run(alternate(server.url, runs, calls))
    checks = checks_seconds()
    p50 = {name: median(values) for name, values in times.items() if name != "sizes"}
    size = dict(zip(calls, times["sizes"], strict=True))
    for name, seconds in p50.items():
        print(f"{name:16} p50 {seconds * 1e3:7.2f} ms  {size[name] / 1024:7.1f} KiB", flush=True)
    print(f"edge checks      {checks * 1e6:7.2f} µs per request, in-process", flush=True)
    return [
        Figure("edge: checks ÷ a health round trip (p50)", checks / p50["live"], "x", "<= 0.02"),
        Figure(
            "edge: float embeddings, gzip ÷ identity reply (p50)",
            p50["float gzip"] / p50["float identity"],
            "x",
            "<= 1.1",
        ),
        Figure(
            "edge: float embeddings reply size, gzip ÷ identity",
            size["float gzip"] / size["float identity"],
            "x",
        ),
        Figure(
            "edge: base64 embeddings, gzip ÷ identity reply (p50)",
            p50["base64 gzip"] / p50["base64 identity"],
            "x",
            "<= 1.1",
        ),
        Figure(
            "edge: gzip ÷ plain request body (p50)",
            p50["gzip body"] / p50["float identity"],
            "x",
            "<= 1.05",
        ),
    ]


def main() -> None:
    run(__doc__, measure, runs=30)


if __name__ == "__main__":
    main()
