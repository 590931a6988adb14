"""Replication origins: every write the sync makes carries one, so capture does not publish it back (no echo).

An origin can be active in only one backend at a time, so each writer connection claims the first free origin of
a small pool (`<prefix>_<system>_<n>`); capture drops every transaction whose origin starts with the prefix.
"""

from __future__ import annotations

import asyncpg

POOL_SIZE = 16


async def claim(conn: asyncpg.Connection, prefix: str, system: str) -> str:
    """Tag every later commit of `conn` with a free origin of the pool; returns its name."""
    last_error: Exception | None = None
    for n in range(POOL_SIZE):
        name = f"{prefix}_{system}_{n}"
        await conn.execute(
            "SELECT pg_replication_origin_create($1) "
            "WHERE NOT EXISTS (SELECT 1 FROM pg_replication_origin WHERE roname = $1)", name)
        try:
            await conn.execute("SELECT pg_replication_origin_session_setup($1)", name)
            return name
        except asyncpg.ObjectInUseError as exc:
            last_error = exc
        except asyncpg.PostgresError as exc:
            if "already active" not in str(exc):
                raise
            last_error = exc
    raise RuntimeError(f"all {POOL_SIZE} replication origins for {system} are in use: {last_error}")
