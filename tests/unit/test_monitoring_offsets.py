"""Offset arithmetic: lag, retained messages, the committed position, rates from offset deltas."""

from __future__ import annotations

import pytest

from cdc.monitoring.offsets import Committed, committed_offset, partition_lag, rate, retained, total


@pytest.mark.parametrize(("tracked", "kafka", "expected"), [
    (None, None, None),
    (None, -1, None),
    (5, None, Committed(5, "state")),
    (None, 7, Committed(7, "kafka")),
    (9, 9, Committed(9, "both")),
    (12, 9, Committed(12, "state")),  # the state database is ahead: Kafka's commit is best effort
    (9, 12, Committed(12, "kafka")),
    (3, -1, Committed(3, "state")),
])
def test_committed_is_the_later_of_tracked_and_kafka(tracked, kafka, expected) -> None:
    assert committed_offset(tracked, kafka) == expected


@pytest.mark.parametrize(("beginning", "end", "committed", "lag"), [
    (0, 0, None, 0),  # empty partition
    (0, 10, None, 10),  # never consumed: everything retained is lag
    (4, 10, None, 6),  # never consumed, retention dropped the first four
    (0, 10, 10, 0),  # caught up
    (0, 10, 7, 3),
    (5, 10, 2, 5),  # position before the earliest retained message
    (0, 10, 12, 0),  # position past the end (topic recreated): no negative lag
])
def test_partition_lag(beginning, end, committed, lag) -> None:
    assert partition_lag(beginning, end, committed) == lag


def test_retained() -> None:
    assert retained(0, 0) == 0
    assert retained(3, 10) == 7
    assert retained(10, 3) == 0


def test_rate_from_offset_deltas() -> None:
    assert rate(100, 130, 2.0) == 15.0
    assert rate(100, 100, 2.0) == 0.0
    assert rate(None, 130, 2.0) is None  # first sample
    assert rate(100, 130, 0.0) is None  # no time passed
    assert rate(130, 100, 2.0) is None  # went backwards: topic recreated


def test_total_of_the_known_rates() -> None:
    before = {("t", 0): 10, ("t", 1): 20}
    after = {("t", 0): 20, ("t", 1): 20, ("t", 2): 5}
    found = {tp: rate(before.get(tp), offset, 5.0) for tp, offset in after.items()}
    assert found == {("t", 0): 2.0, ("t", 1): 0.0, ("t", 2): None}  # a new partition has no rate yet
    assert total(list(found.values())) == 2.0
    assert total([None, None]) is None
