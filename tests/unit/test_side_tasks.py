"""Side tasks beside the consume loop (consumers/side_tasks.py): a failing one ends the loop after its batch and its
error is raised; `stop` ends everything; one that ends cleanly leaves the loop running."""

from __future__ import annotations

import asyncio

import pytest

from consumers.side_tasks import supervise


class Loop:
    """A consume loop whose batches take `batch` seconds; records what it went through."""

    def __init__(self, batch: float = 0.02) -> None:
        self.batch, self.batches, self.interrupted = batch, 0, False

    async def __call__(self, halt: asyncio.Event) -> None:
        while not halt.is_set():
            try:
                await asyncio.sleep(self.batch)
            except asyncio.CancelledError:
                self.interrupted = True
                raise
            self.batches += 1


async def test_a_failing_side_task_ends_the_loop_after_its_batch_and_is_raised() -> None:
    loop = Loop(batch=0.1)

    async def failing(stop: asyncio.Event) -> None:
        await asyncio.sleep(0.03)
        raise ConnectionResetError("state database gone")

    with pytest.raises(ConnectionResetError, match="gone"):
        await supervise(loop, [failing], asyncio.Event())
    assert loop.batches == 1 and not loop.interrupted


async def test_stop_ends_the_loop_and_cancels_the_side_tasks() -> None:
    stop, loop, cancelled = asyncio.Event(), Loop(), []

    async def forever(stop: asyncio.Event) -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    asyncio.get_running_loop().call_later(0.05, stop.set)
    await asyncio.wait_for(supervise(loop, [forever], stop), 2)
    assert loop.batches >= 1 and not loop.interrupted and cancelled == [True]


async def test_the_loops_own_error_is_raised_and_a_clean_side_task_changes_nothing() -> None:
    async def done(stop: asyncio.Event) -> None:
        return None

    async def broken(halt: asyncio.Event) -> None:
        await asyncio.sleep(0.05)
        raise RuntimeError("batch failed")

    with pytest.raises(RuntimeError, match="batch failed"):
        await asyncio.wait_for(supervise(broken, [done], asyncio.Event()), 2)
