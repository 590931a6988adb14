"""Parked events: changes that cannot be applied yet, kept in order per record until they are due again.

While a record has a parked event, its later events must be parked behind it (`is_parked`), so a record's
changes are never applied out of order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from cdc.pair import System
from cdc.state import queries
from cdc.state.queries import jsonb_in, jsonb_out, rows_affected

_Q = queries.load("parking")


@dataclass(frozen=True)
class Parked:
    """An event to park."""

    mapping: str
    system: System
    key: str
    event: dict[str, Any]
    reason: str
    keep: System | None = None
    """An operator's resolution of a conflict: the side whose values win when the change is decided again."""


@dataclass(frozen=True)
class ParkedEvent:
    id: int
    mapping: str
    system: System
    key: str
    event: dict[str, Any]
    reason: str
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    keep: System | None = None

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> ParkedEvent:
        data = dict(row)
        data["system"], data["key"] = data.pop("source_system"), data.pop("source_key")
        data["event"] = jsonb_out(data["event"])
        return cls(**data)


async def park(conn: asyncpg.Connection, mapping: str, system: System, key: str, event: dict[str, Any],
               reason: str, delay: timedelta) -> int:
    """Park one event, due after `delay`; its id."""
    return (await park_many(conn, [Parked(mapping, system, key, event, reason)], delay))[0]


async def park_many(conn: asyncpg.Connection, events: list[Parked], delay: timedelta) -> list[int]:
    if not events:
        return []
    rows = await conn.fetch(_Q.park_many, [e.mapping for e in events], [e.system for e in events],
                            [e.key for e in events], [jsonb_in(e.event) for e in events],
                            [e.reason for e in events], delay, [e.keep for e in events])
    return [row["id"] for row in rows]


async def due(conn: asyncpg.Connection, now: datetime, limit: int = 100) -> list[ParkedEvent]:
    """Events due at `now`, oldest due first; inside a transaction they stay locked against other retriers."""
    return [ParkedEvent.from_row(row) for row in await conn.fetch(_Q.due, now, limit)]


async def is_parked(conn: asyncpg.Connection, mapping: str, system: System, keys: list[str]) -> set[str]:
    """Which of `keys` have parked events."""
    if not await conn.fetchval(_Q.any_parked, mapping, system):
        return set()
    rows = await conn.fetch(_Q.parked_keys, mapping, system, list(keys))
    return {row["source_key"] for row in rows}


async def release(conn: asyncpg.Connection, ids: list[int]) -> int:
    """Remove events that were applied (or given up on)."""
    return rows_affected(await conn.execute(_Q.release, list(ids)))


async def reschedule(conn: asyncpg.Connection, id: int, attempts: int, next_at: datetime,
                     reason: str | None = None) -> None:
    await conn.execute(_Q.reschedule, id, attempts, next_at, reason)


async def records(conn: asyncpg.Connection, mapping: str) -> dict[tuple[System, str], str]:
    """The records of `mapping` with parked changes, each with why its oldest one waits."""
    return {(row["source_system"], row["source_key"]): row["reason"] for row in await conn.fetch(_Q.records, mapping)}


async def waiting(conn: asyncpg.Connection, id: int) -> bool:
    """Whether the parked event `id` still waits (a worker has not applied it yet)."""
    return bool(await conn.fetchval(_Q.waiting, id))


async def count(conn: asyncpg.Connection, mapping: str | None = None) -> int:
    return await conn.fetchval(_Q.count, mapping)
