"""Couplings: which ERP record is the partner of which CRM record, per mapping, and what was last synced.

The database enforces 1:1 (primary key on the ERP key, unique CRM key). The values of each side are the mapped
columns as last synced: the fingerprint that tells a real change from an echo or a no-op.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Literal

import asyncpg

from cdc.errors import CdcError
from cdc.pair import Pair, System
from cdc.state import queries
from cdc.state.queries import jsonb_in, jsonb_out, rows_affected, system_param

_Q = queries.load("couplings")

Result = Literal["success", "failure"]
SyncDirection = Literal["to_crm", "to_erp"]


class AlreadyCoupled(CdcError):
    """A record is already coupled; coupling it again would break 1:1."""


class NotCoupled(CdcError):
    """The record has no coupling."""


@dataclass(frozen=True)
class Coupling:
    mapping: str
    erp_key: str
    crm_key: str
    erp_values: dict[str, Any] | None = None
    crm_values: dict[str, Any] | None = None
    erp_modified_on: datetime | None = None
    crm_modified_on: datetime | None = None
    erp_position: int | None = None
    crm_position: int | None = None
    last_result_to_crm: Result | None = None
    last_result_to_erp: Result | None = None
    last_error: str | None = None
    failure_count: int = 0
    skipped: bool = False
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def key(self, system: System) -> str:
        return Pair(self.erp_key, self.crm_key)[system]

    def values(self, system: System) -> dict[str, Any] | None:
        return Pair(self.erp_values, self.crm_values)[system]

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> Coupling:
        data = dict(row)
        data["erp_values"] = jsonb_out(data["erp_values"])
        data["crm_values"] = jsonb_out(data["crm_values"])
        return cls(**data)


_COLUMNS = [f.name for f in fields(Coupling) if f.name not in ("created_at", "updated_at")]


async def fetch_by_keys(conn: asyncpg.Connection, mapping: str, system: System,
                        keys: list[str]) -> dict[str, Coupling]:
    """The couplings of `keys` (keys of `system`), by that key; uncoupled keys are absent."""
    query = Pair(_Q.fetch_by_erp_keys, _Q.fetch_by_crm_keys)[system_param(system)]
    rows = await conn.fetch(query, mapping, list(keys))
    found = (Coupling.from_row(row) for row in rows)
    return {c.key(system): c for c in found}


async def partners_by_keys(conn: asyncpg.Connection, mapping: str, system: System,
                           keys: list[str]) -> dict[str, str]:
    """The coupled partner's key of each of `keys` (keys of `system`); uncoupled keys are absent. Cheaper than
    `fetch_by_keys` when only the pairing matters (no fingerprints to parse)."""
    erp = system_param(system) == "erp"
    rows = await conn.fetch(_Q.partners_by_erp_keys if erp else _Q.partners_by_crm_keys, mapping, list(keys))
    return {row["erp_key"]: row["crm_key"] for row in rows} if erp else {
        row["crm_key"]: row["erp_key"] for row in rows}


async def partners_of(conn: asyncpg.Connection, wanted: Iterable[tuple[str, System, str]]
                      ) -> dict[tuple[str, System, str], str]:
    """The coupled partner's key of each (mapping, system, key), whatever the mappings and systems, in one round
    trip; uncoupled ones are absent."""
    erp = sorted({(m, k) for m, system, k in wanted if system_param(system) == "erp"})
    crm = sorted({(m, k) for m, system, k in wanted if system == "crm"})
    if not erp and not crm:
        return {}
    rows = await conn.fetch(_Q.partners_of_many, [m for m, _ in erp], [k for _, k in erp],
                            [m for m, _ in crm], [k for _, k in crm])
    return {(row["mapping"], row["system"], row["key"]): row["partner"] for row in rows}


async def fetch_one(conn: asyncpg.Connection, mapping: str, system: System, key: str) -> Coupling | None:
    return (await fetch_by_keys(conn, mapping, system, [key])).get(key)


async def upsert_many(conn: asyncpg.Connection, couplings: list[Coupling]) -> None:
    """Insert or overwrite couplings by (mapping, erp_key) in one statement; the last one wins per key.

    A `last_result_to_*` of None keeps the stored result of that direction (a sync reports only its own).
    A CRM key already coupled to another ERP record raises AlreadyCoupled (and aborts the transaction).
    """
    latest = {(c.mapping, c.erp_key): c for c in couplings}
    if not latest:
        return
    try:
        updated = {(r["mapping"], r["erp_key"]) for r in await conn.fetch(_Q.update_many, *_arrays(latest.values()))}
        new = [c for key, c in latest.items() if key not in updated]
        if new:
            await conn.execute(_Q.upsert_many, *_arrays(new))
    except asyncpg.UniqueViolationError as exc:
        raise AlreadyCoupled(f"a CRM record is already coupled to another ERP record: {exc.detail}") from None


def _arrays(couplings: Iterable[Coupling]) -> list[list[Any]]:
    columns: dict[str, list[Any]] = {name: [] for name in _COLUMNS}
    for c in couplings:
        for name in _COLUMNS:
            value = getattr(c, name)
            columns[name].append(jsonb_in(value) if name.endswith("_values") else value)
    return list(columns.values())


async def couple(conn: asyncpg.Connection, mapping: str, erp_key: str, crm_key: str) -> Coupling:
    """Couple two uncoupled records; AlreadyCoupled names the side that is taken (even by this same pair)."""
    row = await conn.fetchrow(_Q.couple, mapping, erp_key, crm_key)
    if row is not None:
        return Coupling.from_row(row)
    taken = await fetch_one(conn, mapping, "erp", erp_key)
    if taken is not None:
        raise AlreadyCoupled(f"{mapping}: ERP record {erp_key!r} is already coupled to CRM record "
                             f"{taken.crm_key!r}")
    taken = await fetch_one(conn, mapping, "crm", crm_key)
    if taken is not None:
        raise AlreadyCoupled(f"{mapping}: CRM record {crm_key!r} is already coupled to ERP record "
                             f"{taken.erp_key!r}")
    raise AlreadyCoupled(f"{mapping}: ERP record {erp_key!r} or CRM record {crm_key!r} was just coupled "
                         "by someone else")


async def uncouple(conn: asyncpg.Connection, mapping: str, *, erp_key: str | None = None,
                   crm_key: str | None = None, all: bool = False) -> int:
    """Remove the coupling of one record (by either key) or every coupling of the mapping; how many went."""
    if sum((erp_key is not None, crm_key is not None, all)) != 1:
        raise ValueError("uncouple takes exactly one of erp_key, crm_key, all")
    if all:
        status = await conn.execute(_Q.uncouple_all, mapping)
    elif erp_key is not None:
        status = await conn.execute(_Q.uncouple_erp, mapping, erp_key)
    else:
        status = await conn.execute(_Q.uncouple_crm, mapping, crm_key)
    return rows_affected(status)


async def count(conn: asyncpg.Connection, mapping: str) -> int:
    return await conn.fetchval(_Q.count, mapping)


async def mark_failure(conn: asyncpg.Connection, mapping: str, erp_key: str, direction: SyncDirection,
                       error: str) -> Coupling:
    """Record a failed sync of a coupled record; the same error twice in a row makes it skipped."""
    if direction not in ("to_crm", "to_erp"):
        raise ValueError(f"direction must be to_crm or to_erp, not {direction!r}")
    row = await conn.fetchrow(_Q.mark_failure, mapping, erp_key, direction, error)
    if row is None:
        raise NotCoupled(f"{mapping}: ERP record {erp_key!r} is not coupled")
    return Coupling.from_row(row)


async def skip(conn: asyncpg.Connection, mapping: str, system: System, key: str) -> bool:
    """Mark the coupling of one record skipped; False when the record is not coupled."""
    query = Pair(_Q.skip_erp, _Q.skip_crm)[system_param(system)]
    return rows_affected(await conn.execute(query, mapping, key)) > 0


async def clear_skipped(conn: asyncpg.Connection, mapping: str, system: System = "erp",
                        keys: list[str] | None = None) -> int:
    """Un-skip couplings and reset their failure count (all of the mapping when `keys` is None)."""
    query = Pair(_Q.clear_skipped_erp, _Q.clear_skipped_crm)[system_param(system)]
    return rows_affected(await conn.execute(query, mapping, None if keys is None else list(keys)))


async def list_skipped(conn: asyncpg.Connection, mapping: str | None = None,
                       limit: int = 100) -> list[Coupling]:
    return [Coupling.from_row(row) for row in await conn.fetch(_Q.list_skipped, mapping, limit)]
