"""Record log: recent decisions about each record ("why did / didn't this sync?"), pruned to a bound."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from cdc.pair import System
from cdc.state import queries
from cdc.state.queries import rows_affected

_Q = queries.load("record_log")


@dataclass(frozen=True)
class LogEntry:
    mapping: str
    system: System
    key: str
    decision: str
    partner_key: str | None = None
    event_id: str | None = None
    op: str | None = None
    detail: str | None = None
    at: datetime | None = None  # None: the transaction's time
    id: int | None = None


async def append_many(conn: asyncpg.Connection, entries: list[LogEntry]) -> None:
    if not entries:
        return
    columns = ("at", "mapping", "system", "key", "partner_key", "event_id", "op", "decision", "detail")
    await conn.execute(_Q.append_many, *([getattr(e, c) for e in entries] for c in columns))


async def recent(conn: asyncpg.Connection, system: System, key: str, limit: int = 20) -> list[LogEntry]:
    """The newest entries about one record first."""
    return [LogEntry(**dict(row)) for row in await conn.fetch(_Q.recent, system, key, limit)]


async def prune(conn: asyncpg.Connection, keep: int) -> int:
    """Delete all but the newest `keep` entries; how many went."""
    if keep < 0:
        raise ValueError("keep must be zero or more")
    return rows_affected(await conn.execute(_Q.prune, keep))
