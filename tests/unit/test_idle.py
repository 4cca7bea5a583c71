"""keep_alive's seconds and timer (app/core/models/idle.py): a request's value over the
model's own, negative or endless to stay loaded, forgotten when the model unloads."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import pytest
from localoip.app.core.models.idle import Idle


def idle(own: float | None, pending: int = 0, ready: bool = True) -> tuple[Idle, list[str]]:
    unloads: list[str] = []

    async def unload() -> None:
        unloads.append("unloaded")

    spec = SimpleNamespace(options=SimpleNamespace(keep_alive_seconds=own))
    return Idle(spec, lambda: pending, lambda: ready, unload), unloads


@pytest.mark.parametrize(
    ("own", "asked", "seconds"),
    [
        (None, None, None),
        (300.0, None, 300.0),
        (300.0, 5.0, 5.0),
        (None, 5.0, 5.0),
        (300.0, -1.0, None),
        (300.0, float("inf"), None),
    ],
)
def test_a_request_s_keep_alive_comes_before_the_model_s_own(own, asked, seconds):
    async def run() -> float | None:
        timer, _ = idle(own, pending=1)
        timer.keep(asked)
        return timer.seconds()

    assert asyncio.run(run()) == seconds


def test_an_idle_model_s_timer_starts_again_from_the_request_and_unloads_it():
    async def run() -> tuple[list[str], float | None]:
        timer, unloads = idle(300.0)
        timer.keep(0.01)
        expires = timer.expires()
        await asyncio.sleep(0.1)
        return unloads, expires

    unloads, expires = asyncio.run(run())
    assert unloads == ["unloaded"] and expires is not None and expires < time.time() + 1


def test_an_unload_forgets_the_request_s_keep_alive():
    async def run() -> float | None:
        timer, _ = idle(300.0, pending=1)
        timer.keep(-1)
        timer.forget()
        return timer.seconds()

    assert asyncio.run(run()) == 300.0


def test_a_model_that_stays_loaded_has_no_expiry_and_its_timer_stops():
    async def run() -> tuple[float | None, list[str]]:
        timer, unloads = idle(0.01)
        timer.schedule()
        timer.keep(-1)
        await asyncio.sleep(0.1)
        return timer.expires(), unloads

    assert asyncio.run(run()) == (None, [])
