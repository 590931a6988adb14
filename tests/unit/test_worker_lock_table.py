"""A batch too large for PostgreSQL's lock table is processed in halves, each committing its own offsets; one that
collided with another worker's is tried again (cdc/backoff.py)."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from cdc.errors import CdcError
from cdc.mapping.load import load_mapping_file
from cdc.settings import Settings
from cdc.state.couplings import AlreadyCoupled
from consumers.decisions.outcome import Decision
from consumers.offsets import offsets_after
from consumers.worker import BATCH_TRIES, Worker


class _Item:
    def __init__(self, topic: str, partition: int, offset: int) -> None:
        self.topic, self.partition, self.offset = topic, partition, offset


class _Engine:
    """Fails any batch larger than `fits` the way PostgreSQL does when the lock table is full."""

    def __init__(self, fits: int) -> None:
        self.fits = fits
        self.committed: list[tuple[list[Any], dict[tuple[str, int], int] | None]] = []

    async def process(self, state: Any, items: list[Any], *, announcer: Any, consumed: Any = None,
                      group: Any = None) -> list[tuple[Any, Decision]]:
        if len(items) > self.fits:
            raise asyncpg.OutOfMemoryError("out of shared memory")
        self.committed.append((items, consumed))
        return [(i, Decision("unchanged", "")) for i in items]


def _worker(engine: _Engine) -> Worker:
    worker = Worker(Settings(), load_mapping_file(Settings().mapping_file))
    worker.engine, worker.state, worker.announcer = engine, object(), object()  # type: ignore[assignment]
    return worker


async def test_a_batch_too_large_for_the_lock_table_is_processed_in_halves_with_their_offsets() -> None:
    # partition 0 holds offsets 10..15, partition 1 offsets 3..4: items come grouped by partition
    items = [_Item("t", 0, n) for n in range(10, 16)] + [_Item("t", 1, 3), _Item("t", 1, 4)]
    consumed = {("t", 0): 17, ("t", 1): 5}  # offset 16 was a tombstone: consumed, but no item
    engine = _Engine(fits=3)
    results = await _worker(engine)._process(items, consumed)  # type: ignore[arg-type]
    assert [r[0] for r in results] == items  # every record once, in order
    assert [len(batch) for batch, _ in engine.committed] == [2, 2, 2, 2]
    assert [c for _, c in engine.committed] == [
        {("t", 0): 12}, {("t", 0): 14}, {("t", 0): 16}, consumed]  # the last half commits what the batch consumed


async def test_parked_retries_split_without_offsets() -> None:
    items = [_Item("t", 0, n) for n in range(4)]
    engine = _Engine(fits=2)
    await _worker(engine)._process(items, {})  # type: ignore[arg-type]
    assert [c for _, c in engine.committed] == [{}, {}]


async def test_a_single_record_that_does_not_fit_is_one_clear_error() -> None:
    with pytest.raises(CdcError, match="max_locks_per_transaction"):
        await _worker(_Engine(fits=0))._process([_Item("t", 0, 1)], {("t", 0): 2})  # type: ignore[arg-type]


def test_offsets_after_a_prefix() -> None:
    items = [_Item("a", 0, 5), _Item("a", 0, 6), _Item("b", 2, 9)]
    assert offsets_after(items) == {("a", 0): 7, ("b", 2): 10}  # type: ignore[arg-type]


class _Colliding:
    """Loses the race for a new coupling `times` times (another worker coupled the record first), then decides."""

    def __init__(self, times: int) -> None:
        self.times, self.calls = times, 0

    async def process(self, state: Any, items: list[Any], *, announcer: Any, consumed: Any = None,
                      group: Any = None) -> list[tuple[Any, Decision]]:
        self.calls += 1
        if self.calls <= self.times:
            raise AlreadyCoupled("CUSTOMER: erp C1 is coupled already")
        return [(i, Decision("unchanged", "")) for i in items]


async def test_a_batch_that_collided_with_another_workers_is_tried_again_with_backoff() -> None:
    engine = _Colliding(times=2)
    results = await _worker(engine)._process_whole([_Item("t", 0, 1)], {("t", 0): 2})  # type: ignore[arg-type, list-item]
    assert engine.calls == 3 and [d.verdict for _, d in results] == ["unchanged"]


async def test_a_batch_that_keeps_colliding_gives_up_after_its_tries() -> None:
    engine = _Colliding(times=100)
    with pytest.raises(AlreadyCoupled):
        await _worker(engine)._process_whole([_Item("t", 0, 1)], {("t", 0): 2})  # type: ignore[arg-type, list-item]
    assert engine.calls == BATCH_TRIES
