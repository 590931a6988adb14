"""The worker's links to the two systems: a read pool, an origin-tagged writer connection, and their catalogs."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from cdc import catalog, database, table_gateway
from cdc.mapping.model import MappingFile
from cdc.pair import SYSTEMS, System
from cdc.settings import Settings
from cdc.values import CoercionError, coerce, key_text, key_values
from consumers.appliers import origin


@dataclass
class SystemLink:
    system: System
    reader: asyncpg.Pool
    writer: asyncpg.Connection
    origin: str
    tables: dict[str, catalog.Table]

    async def keys_present(self, table: str, keys: list[str]) -> set[str]:
        """Which of `keys` a row of `table` holds."""
        return set(await self._by_key(table, keys, key_only=True))

    async def rows_by_key(self, table: str, keys: list[str]) -> dict[str, dict]:
        """The current rows of `table` with these keys, by canonical key text."""
        return await self._by_key(table, keys)

    async def _by_key(self, table: str, keys: list[str], *, key_only: bool = False) -> dict[str, dict]:
        if not keys:
            return {}
        shape = self.tables[table]
        if len(shape.primary_key) > 1:
            return await self._by_composite_key(shape, keys, key_only=key_only)
        key_column = shape.primary_key[0]
        type_name = shape.columns[key_column].type_name
        typed = []
        for k in keys:
            try:
                typed.append(coerce(k, type_name))
            except CoercionError:
                continue  # not a value of the key column: no row holds it
        if not typed:
            return {}
        rows = await self.reader.fetch(table_gateway.rows_by_key(shape, key_only=key_only), typed)
        return {str(row[key_column]): dict(row) for row in rows}

    async def _by_composite_key(self, shape: catalog.Table, keys: list[str], *,
                                key_only: bool) -> dict[str, dict]:
        """`_by_key` for a key of several columns: the key texts' columns as typed arrays."""
        names = shape.primary_key
        types = [shape.columns[c].type_name for c in names]
        typed = []
        for k in keys:
            try:
                typed.append(key_values(k, names, types))
            except CoercionError:
                continue  # not a key of this table: no row holds it
        if not typed:
            return {}
        rows = await self.reader.fetch(table_gateway.rows_by_key(shape, key_only=key_only),
                                       *([row[c] for row in typed] for c in names))
        return {key_text(row, names): dict(row) for row in rows}

    async def close(self) -> None:
        await self.writer.close()
        await self.reader.close()


async def open_links(settings: Settings, mapping_file: MappingFile) -> dict[System, SystemLink]:
    links: dict[System, SystemLink] = {}
    try:
        for system in SYSTEMS:
            dsn = settings.dsn(system)
            reader = await database.pool(dsn, role=system.upper(), min_size=1, max_size=4)
            writer = await database.connect(dsn, role=system.upper())
            name = await origin.claim(writer, settings.replication_origin_prefix, system)
            schema_tables: dict[str, list[str]] = {}
            for m in mapping_file.mappings:
                side = m.side(system)
                schema_tables.setdefault(side.schema_, [])
                if side.table not in schema_tables[side.schema_]:
                    schema_tables[side.schema_].append(side.table)
            tables: dict[str, catalog.Table] = {}
            async with reader.acquire() as conn:
                for schema, names in schema_tables.items():
                    tables.update(await catalog.read_tables(conn, schema, names))
            links[system] = SystemLink(system, reader, writer, name, tables)
    except BaseException:
        for link in links.values():
            await link.close()
        raise
    return links
