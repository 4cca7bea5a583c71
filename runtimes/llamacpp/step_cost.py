"""What a row of the engine's decode step costs, learnt from its own steps, and from that how
likely a draft token must be to be kept to be worth verifying.

A step of n rows takes about `base + per_row * n` seconds. On a GPU, or for a tiny model,
`per_row` is small beside `base`, and a drafted row costs next to nothing. On a CPU it is most
of the step: one step of SmolLM2 (Q4_1, 2 threads) took about 10 ms at 1 row and 53 ms at 8
(docs/benchmarks.md). A draft token verified in a step of n generating rows costs `per_row`
seconds and brings on average the chance p that it is kept. The step already gives
n tokens in `base + per_row * n` seconds, so the token is worth its row when
p > per_row * n / (base + per_row * n), the `bar`. Fitted in process with flash attention
(docs/benchmarks.md), that bar was 0.38 for SmolLM2 alone and 0.43 for gemma3-270m (Q4_K)
alone, and 0.83 and 0.86 beside 8 streams, which already fill the cores.

The line is fitted by least squares to the median of the last SAMPLES steps of each size,
each size weighted by its steps. A median, because a step the OS preempts takes many times
its cost: on a busy machine a mean-based line once had steps cost nothing but their rows (a
bar of 1), and drafts all but stopped. Steps that read a prompt are left out: a prompt's
rows need no logits, and cost less than a generating or drafted row. Until steps of two sizes
have been seen FEWEST times each, the bar is 0: drafts follow acceptance alone
(speculation.DraftLength). Where the batch kernels make a long step cheaper a row (gemma3's
repacked Q4_K), the line through short and long steps gives a row less than a short step's
own, and drafts run longer.
"""

from __future__ import annotations

from collections import deque
from statistics import median

SAMPLES = 15  # the latest steps of a size whose median is its time
FEWEST = 3  # steps of a size before its median counts


class StepCost:
    """The engine's steps, fitted as seconds = base + per_row * rows."""

    def __init__(self) -> None:
        self._steps: dict[int, deque[float]] = {}  # rows -> the latest steps' seconds
        self._medians: dict[int, float] = {}  # rows -> their median, once FEWEST are seen
        self._line: tuple[float, float] | None = None  # (base, per_row), seconds

    def observe(self, rows: int, seconds: float, reading: bool = False) -> None:
        """Note that a step of `rows` rows took `seconds`, `reading` a prompt among them."""
        if reading or seconds <= 0.0:
            return
        steps = self._steps.setdefault(rows, deque(maxlen=SAMPLES))
        steps.append(seconds)
        if len(steps) >= FEWEST:
            self._medians[rows] = median(steps)
            self._fit()

    def _fit(self) -> None:
        if len(self._medians) < 2:
            return
        weights = {rows: len(self._steps[rows]) for rows in self._medians}
        w = sum(weights.values())
        mean_rows = sum(r * weights[r] for r in weights) / w
        mean_seconds = sum(s * weights[r] for r, s in self._medians.items()) / w
        spread = sum(weights[r] * (r - mean_rows) ** 2 for r in weights)
        cross = sum(
            weights[r] * (r - mean_rows) * (s - mean_seconds) for r, s in self._medians.items()
        )
        per_row = max(cross / spread, 0.0)
        self._line = (max(mean_seconds - per_row * mean_rows, 0.0), per_row)

    def bar(self, rows: int) -> float:
        """The chance of being kept, from 0 to 1, that a draft token needs to be worth its row
        in a step of `rows` generating rows; 0 while no line is known."""
        if self._line is None:
            return 0.0
        base, per_row = self._line
        step = base + per_row * max(rows, 1)
        return min(1.0, per_row * max(rows, 1) / step) if step > 0.0 else 0.0
