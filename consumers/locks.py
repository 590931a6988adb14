"""Record locks: advisory locks in the state database, so two workers never decide about the same record at once.

A lock is named by (mapping, system, key): a coupled pair is locked by its ERP key, an uncoupled record by its
own key, a record about to be created by the key it will take. Locks are transaction-scoped: they end with the
batch's state transaction.
"""

from __future__ import annotations

import hashlib

import asyncpg

from cdc.pair import System


def lock_id(*parts: str) -> int:
    digest = hashlib.blake2b(":".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


async def lock_records(state: asyncpg.Connection, ids: set[int]) -> None:
    """Serialise work on the same records across workers until the state transaction ends (sorted: no deadlock
    within one call; across calls PostgreSQL detects it and the batch is retried)."""
    if ids:
        await state.execute("SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS k ORDER BY k",
                            sorted(ids))


async def lock_keys(state: asyncpg.Connection, mapping: str, system: System, keys: list[str]) -> None:
    await lock_records(state, {lock_id(mapping, system, k) for k in keys})
