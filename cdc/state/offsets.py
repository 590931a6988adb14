"""Tracked offsets: the next Kafka offset to process per consumer group, topic and partition.

Stored in the same transaction as the effects of the events before it, so a redelivered event is recognised
and skipped (the eventsourcing library's tracking record). Offsets only move forward.
"""

from __future__ import annotations

from collections.abc import Mapping

import asyncpg

from cdc.state import queries

_Q = queries.load("offsets")

TopicPartition = tuple[str, int]


async def load(conn: asyncpg.Connection, group: str, topics: list[str]) -> dict[TopicPartition, int]:
    rows = await conn.fetch(_Q.load, group, list(topics))
    return {(row["topic"], row["partition"]): row["next_offset"] for row in rows}


async def store(conn: asyncpg.Connection, group: str, offsets: Mapping[TopicPartition, int]) -> None:
    """Record next offsets; an offset behind the stored one is ignored."""
    if not offsets:
        return
    items = list(offsets.items())
    await conn.execute(_Q.store, group, [tp[0] for tp, _ in items], [tp[1] for tp, _ in items],
                       [offset for _, offset in items])


async def claim(conn: asyncpg.Connection, group: str, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
    """Lock these partitions' tracking rows for the transaction and return their next offsets."""
    if not partitions:
        return {}
    ordered = sorted(set(partitions))
    topics, numbers = [t for t, _ in ordered], [p for _, p in ordered]
    await conn.execute(_Q.create_missing, group, topics, numbers)
    rows = await conn.fetch(_Q.claim, group, topics, numbers)
    return {(row["topic"], row["partition"]): row["next_offset"] for row in rows}
