"""Offset arithmetic, free of I/O: how far a consumer group trails a partition, what a partition retains, and
how fast offsets move between two samples."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

TopicPartition = tuple[str, int]
CommittedSource = Literal["state", "kafka", "both"]


@dataclass(frozen=True)
class Committed:
    """The group's position in one partition: the next offset it will process, and who says so."""

    offset: int
    source: CommittedSource


def committed_offset(tracked: int | None, kafka: int | None) -> Committed | None:
    """The position the worker resumes at: the later of the state database's tracked offset (the truth, written
    with the batch's effects) and Kafka's committed offset (best effort). Kafka reports "none" as -1."""
    kafka = kafka if kafka is not None and kafka >= 0 else None
    tracked = tracked if tracked is not None and tracked >= 0 else None
    if tracked is None and kafka is None:
        return None
    if tracked is None:
        return Committed(kafka, "kafka")  # type: ignore[arg-type]
    if kafka is None:
        return Committed(tracked, "state")
    if tracked == kafka:
        return Committed(tracked, "both")
    return Committed(tracked, "state") if tracked > kafka else Committed(kafka, "kafka")


def retained(beginning: int, end: int) -> int:
    """Messages the partition still holds (end is the next offset to be written)."""
    return max(0, end - beginning)


def partition_lag(beginning: int, end: int, committed: int | None) -> int:
    """Messages the group has still to process in one partition.

    With no committed position the group starts at the earliest retained message (`auto_offset_reset=earliest`),
    so everything retained is lag. A position before the earliest retained offset (retention deleted messages
    the group never read) counts from the earliest retained one; a position past the end counts nothing.
    """
    start = beginning if committed is None else max(committed, beginning)
    return max(0, end - start)


def rate(before: int | None, after: int | None, seconds: float) -> float | None:
    """Offsets per second between two readings `seconds` apart; None when unknown.

    An offset that went backwards (topic deleted and recreated, a partition reset) gives no rate rather than a
    negative one.
    """
    if before is None or after is None or seconds <= 0 or after < before:
        return None
    return (after - before) / seconds


def total(values: list[float | None]) -> float | None:
    """Sum of the known values; None when none is known."""
    known = [v for v in values if v is not None]
    return sum(known) if known else None
