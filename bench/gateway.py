"""The OIP gateway against its upstream: MLServer 1.7 (tests/support/peers.py's text model, from
`.venv-peers/mlserver`) called straight and through a `localoip serve` fronting it.

Two figures, each direct and through localoip, in the same run:
- one call at a time over one kept-alive connection (the model answers at once): p50 per
  call, and the overhead, p50 through - p50 direct, in ms; and the CPU time the `localoip
  serve` process spends per relayed call, which a shared machine disturbs far less;
- 64 requests at once to the model taking 20 ms each (`delay`): wall time of the batch,
  median of the rounds, and the ratio through / direct.
The machine's 1-minute load average before and after is printed beside them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from common import cpu_seconds  # noqa: E402
from support.peers import mlserver  # noqa: E402
from support.servers import start_server, stop_server  # noqa: E402

FRONT = '[[models]]\nname = "text"\nruntime = "oip"\nsource = "{url}"\n'


def body(delay: float) -> dict:
    return {
        "parameters": {"delay": delay},
        "inputs": [{"name": "prompt", "shape": [1], "datatype": "BYTES", "data": ["hi"]}],
    }


async def one_at_a_time(url: str, calls: int) -> float:
    """p50 seconds of one call, one after another over one connection."""
    seconds = []
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        for i in range(calls + 20):
            start = time.perf_counter()
            reply = await client.post("/v2/models/text/infer", json=body(0))
            if reply.status_code != 200:
                raise RuntimeError(reply.text)
            if i >= 20:  # after a warm-up
                seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


async def at_once(url: str, n: int, delay: float, rounds: int) -> float:
    """Median wall seconds of n requests sent at once, each taking `delay` upstream."""
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    walls = []
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        for r in range(rounds + 1):
            start = time.perf_counter()
            replies = await asyncio.gather(
                *(client.post("/v2/models/text/infer", json=body(delay)) for _ in range(n))
            )
            if any(reply.status_code != 200 for reply in replies):
                raise RuntimeError({reply.status_code for reply in replies})
            if r:  # the first round opens the connections
                walls.append(time.perf_counter() - start)
    return statistics.median(walls)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    folder = Path(tempfile.mkdtemp(prefix="bench-gateway-"))
    with mlserver(folder / "mlserver") as url:
        (folder / "models.toml").write_text(FRONT.format(url=url))
        front = start_server(folder / "models.toml", folder / "server.log")
        try:
            figures = {}
            for label, base in (("direct", url), ("localoip", front.url)):
                before = cpu_seconds(front.process.pid)
                p50 = asyncio.run(one_at_a_time(base, args.calls))
                cpu = (cpu_seconds(front.process.pid) - before) / (args.calls + 20)
                figures[label] = (p50, asyncio.run(at_once(base, 64, 0.02, args.rounds)), cpu)
        finally:
            stop_server(front)
    (direct_p50, direct_64, _), (via_p50, via_64, cpu) = figures["direct"], figures["localoip"]
    print(
        f"one call, p50: direct {direct_p50 * 1e3:.2f} ms, through localoip {via_p50 * 1e3:.2f} ms"
    )
    print(f"overhead per call, p50: {(via_p50 - direct_p50) * 1e3:.2f} ms")
    print(f"localoip CPU per relayed call: {cpu * 1e3:.2f} ms")
    print(f"64 at once, 20 ms each: direct {direct_64 * 1e3:.0f} ms, through {via_64 * 1e3:.0f} ms")
    print(f"ratio through / direct: {via_64 / direct_64:.2f}x")
    print(f"load average (1 min): {load_before:.2f} before, {os.getloadavg()[0]:.2f} after")


if __name__ == "__main__":
    main()
