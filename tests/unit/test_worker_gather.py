"""A worker gathers a trickle of changes into one batch for up to CDC_WORKER_LINGER_MS, stops at a full batch, and
keeps each partition's records in order."""

from __future__ import annotations

import asyncio

from cdc.settings import Settings
from consumers.worker import Worker


class Trickle:
    """A consumer stand-in: each getmany returns the next scripted poll (after its delay)."""

    def __init__(self, polls: list[tuple[float, dict]]) -> None:
        self.polls = polls
        self.calls: list[int] = []

    async def getmany(self, timeout_ms: int, max_records: int) -> dict:
        self.calls.append(max_records)
        if not self.polls:
            await asyncio.sleep(timeout_ms / 1000)
            return {}
        delay, batch = self.polls.pop(0)
        await asyncio.sleep(min(delay, timeout_ms / 1000))
        return batch if delay <= timeout_ms / 1000 else {}


def worker(linger_ms: int, size: int, consumer: Trickle) -> Worker:
    w = Worker.__new__(Worker)
    w.settings = Settings(worker_linger_ms=linger_ms, worker_batch_size=size)
    w.consumer = consumer  # type: ignore[assignment]
    return w


async def test_a_trickle_is_gathered_into_one_batch_in_partition_order() -> None:
    consumer = Trickle([(0, {"p0": [1]}), (0.005, {"p0": [2], "p1": [10]}), (0.005, {"p0": [3]})])
    batch = await worker(200, 100, consumer)._gather()
    assert batch == {"p0": [1, 2, 3], "p1": [10]}


async def test_gathering_stops_at_a_full_batch_and_after_the_linger() -> None:
    full = Trickle([(0, {"p0": [1, 2]}), (0, {"p0": [3]}), (0, {"p0": [4]})])
    assert await worker(1000, 3, full)._gather() == {"p0": [1, 2, 3]}
    assert full.calls == [3, 1]
    slow = Trickle([(0, {"p0": [1]}), (0.5, {"p0": [2]})])
    assert await worker(20, 100, slow)._gather() == {"p0": [1]}
    idle = Trickle([])
    assert await worker(20, 100, idle)._gather() == {}
