"""Runtime settings of mappings, owned by the state database rather than the mapping file.

`sync_only_coupled` here overrides the file's value (NULL: use the file's). Watermarks record, per side, the
latest modified-on that "sync modified" has processed; they never move backwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from cdc.mapping.model import MappingFile
from cdc.pair import Pair, System
from cdc.state import queries
from cdc.state.queries import system_param

_Q = queries.load("mapping_settings")


@dataclass(frozen=True)
class MappingState:
    mapping: str
    sync_only_coupled: bool | None
    erp_watermark: datetime | None
    crm_watermark: datetime | None
    last_synced_at: datetime | None
    updated_at: datetime

    def watermark(self, system: System) -> datetime | None:
        return Pair(self.erp_watermark, self.crm_watermark)[system]


async def effective_sync_only_coupled(conn: asyncpg.Connection, mapping_file: MappingFile) -> dict[str, bool]:
    """Each mapping's "only coupled" flag: the database's override, else the file's value."""
    rows = await conn.fetch(_Q.sync_only_coupled_overrides)
    overrides = {row["mapping"]: row["sync_only_coupled"] for row in rows}
    return {m.name: overrides.get(m.name, m.sync_only_coupled) for m in mapping_file.mappings}


async def set_sync_only_coupled(conn: asyncpg.Connection, names: list[str], value: bool | None) -> None:
    """Override "only coupled" for these mappings; None goes back to the mapping file's value."""
    await conn.execute(_Q.set_sync_only_coupled, list(names), value)


async def get_watermark(conn: asyncpg.Connection, mapping: str, system: System) -> datetime | None:
    row = await conn.fetchrow(_Q.watermarks, mapping)
    return None if row is None else row[f"{system_param(system)}_watermark"]


async def set_watermark(conn: asyncpg.Connection, mapping: str, system: System, at: datetime) -> datetime:
    """Move the watermark of one side to `at` unless it is already later; the watermark now in force."""
    return await conn.fetchval(_Q.advance_watermark, mapping, system_param(system), at)


async def mark_synced(conn: asyncpg.Connection, mapping: str, at: datetime) -> None:
    await conn.execute(_Q.mark_synced, mapping, at)


async def fetch_all(conn: asyncpg.Connection) -> dict[str, MappingState]:
    return {row["mapping"]: MappingState(**dict(row)) for row in await conn.fetch(_Q.fetch_all)}
