"""Read-only links to the ERP and the CRM for the commands that only look (dry run, verify, coupling).

They are `consumers.systems.SystemLink`s without a writer, so the worker's loading code (`consumers.situation`)
can be reused as is; nothing here can write into either system.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg

from cdc import catalog, database
from cdc.mapping.model import MappingFile, TableMapping
from cdc.pair import SYSTEMS, System
from cdc.settings import Settings
from cdc.state import migrate
from consumers import Shapes, SystemLink


@dataclass
class ReadOnly:
    state: asyncpg.Connection
    links: dict[System, SystemLink]
    mapping_file: MappingFile

    def table(self, mapping: TableMapping, system: System) -> catalog.Table:
        return self.links[system].tables[mapping.side(system).table]

    def table_name(self, mapping_name: str, system: System) -> str:
        """The table of `system`'s side of the named mapping (for messages)."""
        return self.mapping_file.get(mapping_name).side(system).table

    def shapes(self, mapping: TableMapping) -> Shapes:
        erp, crm = self.table(mapping, "erp"), self.table(mapping, "crm")
        ek, ck = erp.columns[erp.primary_key[0]], crm.columns[crm.primary_key[0]]
        return Shapes(erp, crm, ek.type_name, ck.type_name, ek.max_length, ck.max_length)


@contextlib.asynccontextmanager
async def read_only(settings: Settings, mapping_file: MappingFile) -> AsyncIterator[ReadOnly]:
    state: asyncpg.Connection | None = None
    pools: list[asyncpg.Pool] = []
    try:
        state = await database.connect(settings.dsn("state"), role="state")
        await migrate.migrate(state)  # the schema only; a fresh install can dry-run before its first sync
        links: dict[System, SystemLink] = {}
        for system in SYSTEMS:
            pool = await database.pool(settings.dsn(system), role=system.upper(), min_size=1, max_size=3)
            pools.append(pool)
            tables: dict[str, catalog.Table] = {}
            async with pool.acquire() as conn:
                tables = await catalog.read_mapped_tables(conn, mapping_file, system)
            links[system] = SystemLink(system, pool, None, "", tables)  # type: ignore[arg-type]
        yield ReadOnly(state, links, mapping_file)
    finally:
        for pool in pools:
            with contextlib.suppress(Exception):
                await pool.close()
        if state is not None:
            with contextlib.suppress(Exception):
                await state.close()
