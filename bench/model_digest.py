"""What a run card's model digest costs: SHA-256 of the default chat models' GGUF files
(`app/core/model_digest.py`), against reading the same bytes without hashing (the baseline, in
the same run), and the cached answer for an unchanged file.

A playground reply pays the digest once per model file when it is stored (on a thread, not
on the event loop); later replies pay the cached stat.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from common import SMOLLM2, Figure, arguments, median, model_path, report
from localoip.app.core import model_digest


def read_only(path: Path) -> None:
    with path.open("rb") as file:
        while file.read(model_digest.CHUNK):
            pass


def timed(action: Callable[[], object], runs: int) -> float:
    """Median seconds of `action()` over `runs`."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return median(times)


def main() -> None:
    args = arguments(__doc__, runs=3).parse_args()
    source = Path(model_path(SMOLLM2))
    gguf = source if source.is_file() else next(source.rglob("*.gguf"))
    read_only(gguf)  # the page cache holds it for every timed run alike
    baseline = timed(lambda: read_only(gguf), args.runs)

    def hashed() -> None:
        model_digest._known.clear()
        model_digest.file_digest(gguf)

    first = timed(hashed, args.runs)
    cached = timed(lambda: model_digest.file_digest(gguf), runs=100)
    size = gguf.stat().st_size / 1e6
    print(f"{gguf.name}: {size:.0f} MB")
    report(
        [
            Figure("read only (baseline), ms", baseline * 1000),
            Figure("sha256 digest, first, ms", first * 1000),
            Figure("digest / read", first / baseline, "x"),
            Figure("digest, cached (one stat), µs", cached * 1e6),
        ],
        args.json,
    )


if __name__ == "__main__":
    main()
