"""Update intents: the writes a batch is about to make into coupled records, announced before they are made.

Writes reach the ERP or the CRM before the state transaction that records their fingerprints commits. A crash in
between leaves a value the coupling's fingerprint does not know — and since the sync's own writes are not
captured, no event will ever tell. Each batch therefore announces, per mapping, one row holding every update it
will write (the values, and the fingerprints they give), committed on a second connection before the writes; its
own state transaction then deletes the row, which keeps it locked: gone if the batch commits, back and unlocked if
it dies. Recovery (`consumers.recovery.recover_updates`) takes the rows nobody holds, oldest first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from cdc import temporal
from cdc.pair import Pair, System
from cdc.state import queries
from cdc.state.queries import jsonb_in, jsonb_out, system_param

_Q = queries.load("update_intents")


@dataclass(frozen=True)
class UpdateIntent:
    """One coupled pair's announced writes, and the fingerprints of the fields they write."""

    erp_key: str
    crm_key: str
    writes: dict[str, dict[str, Any]]
    erp_values: dict[str, Any]
    crm_values: dict[str, Any]
    erp_modified_on: datetime | None = None
    crm_modified_on: datetime | None = None
    erp_position: int | None = None
    crm_position: int | None = None

    def key(self, system: System) -> str:
        return Pair(self.erp_key, self.crm_key)[system]

    def as_json(self) -> dict[str, Any]:
        return {"erp_key": self.erp_key, "crm_key": self.crm_key, "writes": self.writes,
                "erp_values": self.erp_values, "crm_values": self.crm_values,
                "erp_modified_on": _moment_out(self.erp_modified_on),
                "crm_modified_on": _moment_out(self.crm_modified_on),
                "erp_position": self.erp_position, "crm_position": self.crm_position}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> UpdateIntent:
        return cls(data["erp_key"], data["crm_key"], data.get("writes") or {}, data.get("erp_values") or {},
                   data.get("crm_values") or {}, _moment_in(data.get("erp_modified_on")),
                   _moment_in(data.get("crm_modified_on")), data.get("erp_position"), data.get("crm_position"))


@dataclass(frozen=True)
class Announced:
    """A row of update intents left by a batch that died."""

    id: int
    mapping: str
    source: System
    entries: list[UpdateIntent]


async def announce(conn: asyncpg.Connection, mapping: str, source: System, entries: list[UpdateIntent]) -> int:
    """Record, on a connection outside the batch's transaction, the updates about to be written; the row's id."""
    return await conn.fetchval(_Q.announce, mapping, system_param(source), jsonb_in([e.as_json() for e in entries]))


async def hold(state: asyncpg.Connection, intent_id: int) -> None:
    """In the announcing batch's transaction: the row goes when the batch commits, and nobody recovers it before."""
    await state.execute(_Q.hold, intent_id)


async def any_announced(conn: asyncpg.Connection) -> bool:
    return bool(await conn.fetchval(_Q.any))


async def dangling(state: asyncpg.Connection) -> list[Announced]:
    """The rows of batches that died, oldest first, locked in the caller's transaction."""
    rows = await state.fetch(_Q.dangling)
    return [Announced(r["id"], r["mapping"], r["source_system"],
                      [UpdateIntent.from_json(e) for e in jsonb_out(r["entries"])]) for r in rows]


async def settle(state: asyncpg.Connection, ids: list[int]) -> None:
    if ids:
        await state.execute(_Q.settle, list(ids))


@dataclass(frozen=True)
class Restored:
    """What recovery restores of one coupling: fingerprints per field, and the latest positions."""

    erp_key: str
    crm_key: str
    erp_values: dict[str, Any]
    crm_values: dict[str, Any]
    erp_modified_on: datetime | None
    crm_modified_on: datetime | None
    erp_position: int | None
    crm_position: int | None


async def restore_fingerprints(state: asyncpg.Connection, mapping: str, restored: list[Restored]) -> None:
    if not restored:
        return
    await state.execute(_Q.restore_fingerprints, mapping, [r.erp_key for r in restored],
                        [r.crm_key for r in restored], [jsonb_in(r.erp_values) for r in restored],
                        [jsonb_in(r.crm_values) for r in restored], [r.erp_modified_on for r in restored],
                        [r.crm_modified_on for r in restored], [r.erp_position for r in restored],
                        [r.crm_position for r in restored])


def _moment_out(value: Any) -> str | None:
    return None if value is None else (value.isoformat() if isinstance(value, datetime) else str(value))


def _moment_in(value: str | None) -> Any:
    if value is None:
        return None
    parsed = temporal.parse("timestamptz", value)
    return parsed if parsed is not None else datetime.fromisoformat(value)
