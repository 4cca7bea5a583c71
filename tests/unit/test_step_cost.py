"""The engine's step cost (step_cost.py) and the draft length it bounds (speculation.py):
which drafted tokens are worth their rows."""

from __future__ import annotations

import pytest
from localoip.runtimes.llamacpp.speculation import LONGEST_WAIT, DraftLength
from localoip.runtimes.llamacpp.step_cost import StepCost

# SmolLM2 Q4_1 on 2 threads: about 4 ms a step and 6 ms a row (10 ms at 1 row, 53 at 8)
SMOLLM2 = (0.004, 0.006)


def fitted(base: float, per_row: float, rows: list[int]) -> StepCost:
    cost = StepCost()
    for n in rows:
        cost.observe(n, base + per_row * n)
    return cost


def test_the_bar_is_a_rows_share_of_what_the_steps_rows_bring():
    cost = fitted(*SMOLLM2, [1, 2, 1, 9, 1, 3, 1, 5] * 4)
    assert cost.bar(1) == pytest.approx(0.006 / 0.010)
    assert cost.bar(8) == pytest.approx(0.048 / 0.052)  # 8 streams fill the cores already
    assert fitted(0.010, 0.0, [1, 4, 2, 8] * 4).bar(1) == pytest.approx(0.0, abs=1e-9)  # free rows


def test_no_bar_before_steps_of_different_sizes_and_prompt_reads_left_out():
    assert StepCost().bar(1) == 0.0
    assert fitted(*SMOLLM2, [1] * 40).bar(1) == 0.0  # all one size: nothing to fit
    # a prompt's rows need no logits and cost less: a step that reads one does not move the line
    cost = fitted(*SMOLLM2, [1, 3] * 10)
    for _ in range(5):
        cost.observe(33, 0.004, reading=True)
    assert cost.bar(1) == pytest.approx(0.6)


def test_the_line_outlives_a_run_of_one_sized_steps():
    cost = fitted(*SMOLLM2, [1, 5] * 10 + [1] * 500)
    assert cost.bar(1) == pytest.approx(0.6)


def test_steps_the_os_preempted_do_not_move_the_bar():
    # one step in four of each size takes 30 ms more (another process had the cores): a
    # line through the means then put the base at 0 and the bar at 1 on a busy machine
    cost, seen = StepCost(), {}
    for n in [1, 1, 2, 1, 9, 1, 3, 1] * 12:
        seen[n] = seen.get(n, 0) + 1
        cost.observe(n, SMOLLM2[0] + SMOLLM2[1] * n + (0.030 if seen[n] % 4 == 1 else 0.0))
    assert cost.bar(1) == pytest.approx(0.6)
    assert cost.bar(8) == pytest.approx(0.048 / 0.052)


def test_a_copying_sequence_drafts_at_full_length_whatever_the_bar():
    length = DraftLength(8)
    for _ in range(6):
        length.verified(8, 8)
    assert length.now(0.6) == 8
    assert length.now(0.0) == 8


def test_below_the_bar_a_sequence_tries_one_token_every_longest_wait_steps():
    length = DraftLength(8)
    assert length.now(0.6) == 2  # a new sequence: a chance of 0.8, the first length
    for _ in range(4):
        length.verified(1, 0)
        while length.now(0.0) == 0:  # the misses' own waits
            pass
    tries = [length.now(0.6) for _ in range(3 * LONGEST_WAIT)]
    assert tries == ([1] + [0] * (LONGEST_WAIT - 1)) * 3


def test_a_middling_sequence_drafts_fewer_tokens_as_rows_cost_more():
    length = DraftLength(8)
    for _ in range(10):  # kept 3 of every 4 drafted, missing the 4th: a chance of 0.75
        length.verified(4, 3)
    assert length.now(0.0) == 3  # acceptance alone: the length of what was kept
    assert length.now(0.3) == 3  # 0.75 ** 4 = 0.32, ** 5 = 0.24
    assert length.now(0.6) == 1  # 0.75, then 0.56
    assert length.now(0.8) == 1  # below the bar: a try, then a wait
    assert length.now(0.0) == 0


def test_a_try_below_the_bar_keeps_its_wait_whatever_it_kept_or_found():
    length = DraftLength(8)
    for _ in range(4):
        length.verified(2, 0)
    assert length.now(0.9) == 0  # the misses' wait
    while length.now(0.9) == 0:
        pass
    length.verified(1, 0)  # the try missed: a miss's wait would be shorter
    assert [length.now(0.9) for _ in range(LONGEST_WAIT - 1)] == [0] * (LONGEST_WAIT - 1)
    assert length.now(0.9) == 1
    length.idle()  # its lookup found nothing: no sooner either
    assert [length.now(0.9) for _ in range(LONGEST_WAIT - 1)] == [0] * (LONGEST_WAIT - 1)
