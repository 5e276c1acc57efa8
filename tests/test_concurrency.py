"""kazoo_vm.concurrency: bounded, crash-like gathering."""

from __future__ import annotations

import asyncio

import pytest

from kazoo_vm.concurrency import gather_bounded


async def test_at_most_limit_run_at_once_and_results_keep_their_order() -> None:
    running = peak = 0

    async def job(number: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1
        return number

    assert await gather_bounded((job(number) for number in range(10)), 3) == list(range(10))
    assert peak == 3


async def test_the_first_failure_cancels_the_others_and_is_raised_as_itself() -> None:
    finished: list[int] = []

    async def slow(number: int) -> int:
        await asyncio.sleep(0.5)
        finished.append(number)
        return number

    async def failing() -> int:
        raise KeyError("boom")

    with pytest.raises(KeyError):
        await gather_bounded([failing(), slow(1), slow(2)], 3)
    with pytest.raises(KeyError):
        await gather_bounded([failing(), slow(3), slow(4)], 1)  # the others never started
    await asyncio.sleep(0.6)
    assert finished == []
