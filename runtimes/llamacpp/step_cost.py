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

The line is fitted by least squares to recent steps of at most MOST_ROWS rows, weighted
down by DECAY a step. Longer steps, which read prompts, are left out: the batch kernels
cost less a row there. Until steps of different sizes have been seen, the bar is 0: drafts
follow acceptance alone (speculation.DraftLength).
"""

from __future__ import annotations

DECAY = 0.97  # a step's weight in the fit, a step later
MOST_ROWS = 32  # steps of more rows are left out of the fit
SPREAD = 0.25  # the least variance of the fitted steps' rows (rows squared) for a new line


class StepCost:
    """The engine's steps, fitted as seconds = base + per_row * rows."""

    def __init__(self) -> None:
        self._weight = self._rows = self._seconds = self._rows2 = self._cross = 0.0
        self._line: tuple[float, float] | None = None  # (base, per_row), seconds

    def observe(self, rows: int, seconds: float) -> None:
        """Note that a step of `rows` rows took `seconds`."""
        if rows > MOST_ROWS or seconds <= 0.0:
            return
        self._weight = self._weight * DECAY + 1.0
        self._rows = self._rows * DECAY + rows
        self._seconds = self._seconds * DECAY + seconds
        self._rows2 = self._rows2 * DECAY + rows * rows
        self._cross = self._cross * DECAY + rows * seconds
        w = self._weight
        spread = self._rows2 / w - (self._rows / w) ** 2
        if spread < SPREAD:  # all about one size: keep the last line
            return
        per_row = (self._cross / w - self._rows / w * self._seconds / w) / spread
        base = self._seconds / w - per_row * self._rows / w
        self._line = (max(base, 0.0), max(per_row, 0.0))

    def bar(self, rows: int) -> float:
        """The chance of being kept, from 0 to 1, that a draft token needs to be worth its row
        in a step of `rows` generating rows; 0 while no line is known."""
        if self._line is None:
            return 0.0
        base, per_row = self._line
        step = base + per_row * max(rows, 1)
        return min(1.0, per_row * max(rows, 1) / step) if step > 0.0 else 0.0
