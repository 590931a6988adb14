"""The offset tracker (consumers/offsets.py): records before a partition's resume position were processed before and
are left out; a batch consumes, per partition, up to its last fresh record; Kafka's commits run one at a time."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from aiokafka import TopicPartition

from cdc.settings import Settings
from consumers.offsets import OffsetTracker


def _records(*offsets: int) -> list[Any]:
    return [SimpleNamespace(offset=o) for o in offsets]


class _Consumer:
    def __init__(self) -> None:
        self.commits: list[dict] = []
        self.in_flight = 0

    async def commit(self, offsets: dict) -> None:
        self.in_flight += 1
        assert self.in_flight == 1
        await asyncio.sleep(0.01)
        self.commits.append(offsets)
        self.in_flight -= 1


async def test_records_before_the_resume_position_are_left_out() -> None:
    tracker = OffsetTracker(Settings(), _Consumer(), "w")  # type: ignore[arg-type]
    tracker.resume_at = {("t", 0): 12, ("t", 1): 0}
    a, b = TopicPartition("t", 0), TopicPartition("t", 1)
    records, consumed = await tracker.fresh(None, {a: _records(10, 11, 12, 13), b: _records(4)})  # type: ignore[arg-type, dict-item]
    assert [(tp.partition, r.offset) for tp, r in records] == [(0, 12), (0, 13), (1, 4)]
    assert consumed == {("t", 0): 14, ("t", 1): 5}
    _, nothing = await tracker.fresh(None, {a: _records(11)})  # type: ignore[arg-type, dict-item]
    assert nothing == {}


async def test_kafka_commits_follow_one_at_a_time_in_order() -> None:
    consumer = _Consumer()
    tracker = OffsetTracker(Settings(), consumer, "w")  # type: ignore[arg-type]
    for n in range(3):
        await tracker.commit({("t", 0): n})
    await tracker.close()
    assert consumer.commits == [{TopicPartition("t", 0): n} for n in range(3)]
    assert tracker.closed
