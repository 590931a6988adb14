"""Reading the rows of one side of a mapping: in its filter (compiled to SQL by `cdc.mapping.filters.to_sql`),
optionally modified after a watermark, through a server-side cursor in chunks so memory stays bounded.

The count and the rows come from one REPEATABLE READ snapshot, so the total shown is the number replayed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from cdc import table_gateway
from cdc.catalog import Table
from cdc.errors import ConfigError
from cdc.mapping.filters import to_sql
from cdc.mapping.model import Side, TableMapping
from cdc.pair import System
from cdc.values import key_text

CHUNK = 5000


@dataclass(frozen=True)
class SideRows:
    """The rows of `mapping`'s `system` side, as `table` (the live catalog) describes them."""

    mapping: TableMapping
    system: System
    table: Table

    @property
    def side(self) -> Side:
        return self.mapping.side(self.system)

    @property
    def key_columns(self) -> tuple[str, ...]:
        if not self.table.primary_key:
            raise ConfigError(f"{self.system} table {self.table.name} has no primary key")
        return tuple(self.table.primary_key)

    def key_of(self, row: Any) -> str:
        """The record's key as text, the way events, couplings and jobs name it (`schemas.key_text`)."""
        return key_text(row, self.key_columns)

    def where(self, since: datetime | None = None, first_param: int = 1) -> tuple[str, list[Any]]:
        """The rows in the side's filter (and modified after `since`): SQL condition and parameters."""
        columns = {name: column.type_name for name, column in self.table.columns.items()}
        condition, params = to_sql(self.side.filter, columns, first_param)
        if since is not None:
            if self.side.modified_on not in columns:
                raise ConfigError(f"{self.system} table {self.table.name} has no column {self.side.modified_on}")
            params.append(since)
            condition = (f"({condition}) AND "
                         f"{table_gateway.modified_after(self.side.modified_on, first_param + len(params) - 1)}")
        return condition, params

    def select(self, columns: list[str] | None = None, since: datetime | None = None) -> tuple[str, list[Any]]:
        condition, params = self.where(since)
        return table_gateway.select(self.table, columns, condition), params

    @property
    def parent_columns(self) -> list[tuple[str, ...]]:
        """The references of a hierarchy: per field whose lookup goes through this same mapping (a parent record),
        its columns, one per key column in the key's order."""
        return [columns for f in self.mapping.fields_from(self.system)
                if f.lookup == self.mapping.name and len(columns := tuple(f.columns(self.system))) == len(
                    self.key_columns) and all(c in self.table.columns for c in columns)]

    def select_by_depth(self, since: datetime | None = None) -> tuple[str, list[Any]]:
        """The rows of a hierarchy, parents before children: each with its depth (the longest chain of ancestors
        in the table; NULL for rows in a cycle, which come last). Keys of several columns are compared as rows."""
        condition, params = self.where(since)
        return table_gateway.select_by_depth(self.table, self.parent_columns, condition), params

    @asynccontextmanager
    async def snapshot(self, conn: asyncpg.Connection, since: datetime | None = None, chunk: int = CHUNK,
                       columns: list[str] | None = None, *, by_depth: bool = False
                       ) -> AsyncIterator[tuple[int, AsyncIterator[list[dict]]]]:
        """(how many rows, an iterator of row chunks), both from one read-only snapshot. `by_depth`: a hierarchy's
        rows parents first, each with its depth in the column `table_gateway.DEPTH`."""
        condition, params = self.where(since)
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            total = await conn.fetchval(table_gateway.count(self.table, condition), *params)
            sql, params = self.select_by_depth(since) if by_depth else self.select(columns, since)

            async def chunks() -> AsyncIterator[list[dict]]:
                cursor = await conn.cursor(sql, *params)
                while True:
                    rows = await cursor.fetch(chunk)
                    if not rows:
                        return
                    yield [dict(row) for row in rows]

            yield total, chunks()
