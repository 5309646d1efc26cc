"""What every long-running background loop shares."""

from __future__ import annotations

import asyncio


def stop_if_cancelled() -> None:
    """End the loop if its task was cancelled, even where the cancel was swallowed on the way
    (asyncio.wait_for in 3.11 and libraries under load do; the loop would then run forever
    and hold up the shutdown)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
