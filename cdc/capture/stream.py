"""Reading a slot's pending changes through a server-side cursor, so a huge transaction streams through the client
in bounded memory (PostgreSQL spools the decoded rows; the cursor fetches `prefetch` rows at a time)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg

PEEK = (
    "SELECT (lsn - '0/0'::pg_lsn)::int8, data "
    "  FROM pg_catalog.pg_logical_slot_peek_binary_changes($1, NULL, $2::int, 'proto_version', '1', "
    "       'publication_names', $3, 'messages', 'true')"
)


async def peek(conn: asyncpg.Connection, slot: str, publication: str, limit: int,
               chunk: int = 2000) -> AsyncIterator[list[asyncpg.Record]]:
    """Chunks of (LSN, pgoutput message) rows from the slot's confirmed position on: whole transactions, stopping
    at the first transaction boundary after `limit` rows. Peeking does not move the slot."""
    async with conn.transaction():
        cursor = await conn.cursor(PEEK, slot, limit, publication)
        while rows := await cursor.fetch(chunk):
            yield rows
