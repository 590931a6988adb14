"""Coupling intents: the creations and matches a batch is about to write, announced (and committed) before they are
written (updates of coupled records: `cdc.state.update_intents`).

Writes reach the ERP or the CRM before the state transaction that records their coupling commits. A crash in
between leaves the systems ahead of the state: a created record nobody knows is the partner of its source, or a
written value the coupling's fingerprint does not know — and since the sync's own writes are not captured, no
event will ever tell. A plain replay repairs neither when the source changed meanwhile (deleted, or changed back).
The intent closes that gap: it holds what was written and the coupling the crashed attempt would have recorded,
and the next decision about either record restores that coupling first (`consumers.recovery`). Other workers
treat a record announced as being created as taken, never as a match candidate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import asyncpg

from cdc.pair import Pair, System, other
from cdc.state import queries
from cdc.state.queries import jsonb_in, jsonb_out, system_param

_Q = queries.load("intents")


@dataclass(frozen=True)
class Intent:
    """A decision about to be applied: the coupling it records and the values it writes, per system."""

    mapping: str
    source: System
    source_key: str
    destination_key: str
    kind: Literal["create", "match"]
    erp_values: dict[str, Any]
    crm_values: dict[str, Any]
    erp_modified_on: datetime | None = None
    crm_modified_on: datetime | None = None
    erp_position: int | None = None
    crm_position: int | None = None
    writes: dict[str, dict[str, Any]] | None = None
    job_id: UUID | None = None

    @property
    def keys(self) -> Pair[str]:
        return Pair.oriented(self.source, self.source_key, self.destination_key)

    @property
    def erp_key(self) -> str:
        return self.keys.erp

    @property
    def crm_key(self) -> str:
        return self.keys.crm

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> Intent:
        return cls(row["mapping"], row["source_system"], row["source_key"], row["destination_key"], row["kind"],
                   jsonb_out(row["erp_values"]), jsonb_out(row["crm_values"]), row["erp_modified_on"],
                   row["crm_modified_on"], row["erp_position"], row["crm_position"], jsonb_out(row["writes"]),
                   row["job_id"])


async def announce(conn: asyncpg.Connection, mapping: str, source: System, announced: list[Intent]) -> None:
    """Record decisions about to be written — on a connection outside the batch's transaction: the intent must be
    durable before the write is."""
    if not announced:
        return
    latest = {(i.source_key, i.kind): i for i in announced}
    rows = [latest[k] for k in sorted(latest)]
    await conn.execute(_Q.announce, mapping, system_param(source), [i.source_key for i in rows],
                       [i.destination_key for i in rows], [i.kind for i in rows],
                       [jsonb_in(i.erp_values) for i in rows], [jsonb_in(i.crm_values) for i in rows],
                       [i.erp_modified_on for i in rows], [i.crm_modified_on for i in rows],
                       [i.erp_position for i in rows], [i.crm_position for i in rows],
                       [jsonb_in(i.writes or {}) for i in rows], [i.job_id for i in rows])


async def couplings_by_source(conn: asyncpg.Connection, mapping: str, source: System,
                              keys: list[str]) -> dict[str, Intent]:
    """Couplings (by creation or match) announced by these source records, by source key."""
    rows = await conn.fetch(_Q.couplings_by_source, mapping, system_param(source), list(keys))
    return {r["source_key"]: Intent.from_row(r) for r in rows}


async def couplings_by_destination(conn: asyncpg.Connection, mapping: str, destination: System,
                                   keys: list[str]) -> dict[str, Intent]:
    """Couplings (by creation or match) announced with these records as the partner, by destination key."""
    source = other(system_param(destination))
    rows = await conn.fetch(_Q.couplings_by_destination, mapping, source, list(keys))
    return {r["destination_key"]: Intent.from_row(r) for r in rows}


async def forget(conn: asyncpg.Connection, mapping: str, source: System, keys: list[str]) -> None:
    if keys:
        await conn.execute(_Q.forget, mapping, system_param(source), sorted(set(keys)))


async def taken(conn: asyncpg.Connection, mapping: str, system: System, keys: list[str]) -> set[str]:
    """Which of `keys` (records of `system`) are coupled or announced as being created."""
    if not keys:
        return set()
    query = Pair(_Q.taken_erp, _Q.taken_crm)[system_param(system)]
    return {r["key"] for r in await conn.fetch(query, mapping, list(keys))}


async def exist(conn: asyncpg.Connection) -> bool:
    return bool(await conn.fetchval(_Q.exist))
