"""Coupling intents: the records a batch is about to create, announced (and committed) before they are written.

A create is written to the destination before the state transaction that couples it commits. A crash in between
leaves a destination record nobody knows is the partner of its source; the replay would usually re-create it on
the same deterministic key, but not when the source was deleted (or changed out of reach) meanwhile, and it would
overwrite what a user changed in the new record since. The intent closes that gap: it holds the coupling the
crashed attempt would have recorded, and the next decision about either record restores it first
(`consumers.recovery`). Other workers treat an announced record as taken, never as a match candidate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from cdc.settings import System
from cdc.state import queries
from cdc.state.queries import jsonb_in, jsonb_out, system_param

_Q = queries.load("intents")


@dataclass(frozen=True)
class Intent:
    mapping: str
    source: System
    source_key: str
    destination_key: str
    erp_values: dict[str, Any]
    crm_values: dict[str, Any]
    erp_modified_on: datetime | None = None
    crm_modified_on: datetime | None = None
    erp_position: int | None = None
    crm_position: int | None = None
    job_id: UUID | None = None

    @property
    def erp_key(self) -> str:
        return self.source_key if self.source == "erp" else self.destination_key

    @property
    def crm_key(self) -> str:
        return self.destination_key if self.source == "erp" else self.source_key

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> Intent:
        return cls(row["mapping"], row["source_system"], row["source_key"], row["destination_key"],
                   jsonb_out(row["erp_values"]), jsonb_out(row["crm_values"]), row["erp_modified_on"],
                   row["crm_modified_on"], row["erp_position"], row["crm_position"], row["job_id"])


async def announce(conn: asyncpg.Connection, mapping: str, source: System, announced: list[Intent]) -> None:
    """Record creations about to be written — on a connection outside the batch's transaction: the intent must
    be durable before the destination write is."""
    if not announced:
        return
    latest = {i.source_key: i for i in announced}
    rows = [latest[k] for k in sorted(latest)]
    await conn.execute(_Q.announce, mapping, system_param(source), [i.source_key for i in rows],
                       [i.destination_key for i in rows], [jsonb_in(i.erp_values) for i in rows],
                       [jsonb_in(i.crm_values) for i in rows], [i.erp_modified_on for i in rows],
                       [i.crm_modified_on for i in rows], [i.erp_position for i in rows],
                       [i.crm_position for i in rows], [i.job_id for i in rows])


async def by_source(conn: asyncpg.Connection, mapping: str, source: System, keys: list[str]) -> dict[str, Intent]:
    """Creations announced by these source records, by source key."""
    rows = await conn.fetch(_Q.by_source, mapping, system_param(source), list(keys))
    return {r["source_key"]: Intent.from_row(r) for r in rows}


async def by_destination(conn: asyncpg.Connection, mapping: str, destination: System,
                         keys: list[str]) -> dict[str, Intent]:
    """Announced creations of these destination records, by destination key."""
    source = "crm" if system_param(destination) == "erp" else "erp"
    rows = await conn.fetch(_Q.by_destination, mapping, source, list(keys))
    return {r["destination_key"]: Intent.from_row(r) for r in rows}


async def forget(conn: asyncpg.Connection, mapping: str, source: System, keys: list[str]) -> None:
    if keys:
        await conn.execute(_Q.forget, mapping, system_param(source), sorted(set(keys)))


async def taken(conn: asyncpg.Connection, mapping: str, system: System, keys: list[str]) -> set[str]:
    """Which of `keys` (records of `system`) are coupled or announced as being created."""
    if not keys:
        return set()
    query = _Q.taken_erp if system_param(system) == "erp" else _Q.taken_crm
    return {r["key"] for r in await conn.fetch(query, mapping, list(keys))}


async def count(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval(_Q.count))
