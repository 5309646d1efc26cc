"""A background loop ends on cancel even where something on the way swallowed the cancel."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from application.background import stop_if_cancelled


async def test_a_swallowed_cancel_still_ends_the_loop() -> None:
    rounds = 0

    async def loop() -> None:
        nonlocal rounds
        while True:
            stop_if_cancelled()
            rounds += 1
            with contextlib.suppress(asyncio.CancelledError):  # as a buggy library might
                await asyncio.sleep(0.01)

    task = asyncio.create_task(loop())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(5):
            await task
    assert task.cancelled() and rounds >= 1


async def test_a_loop_not_cancelled_goes_on() -> None:
    stop_if_cancelled()  # nothing to stop: returns
    assert asyncio.current_task() is not None
