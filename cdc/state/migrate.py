"""Versioned migrations of the state database.

`migrations/NNNN_name.sql` files are applied in order, each in its own transaction together with its row in
`cdc.schema_migrations`. A session advisory lock serialises concurrent migrators: the second one waits, then
finds nothing left to do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import asyncpg
import structlog

from cdc.errors import ConfigError
from cdc.state import queries

log = structlog.get_logger(component="state.migrate")

_Q = queries.load("migrate")
_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# Arbitrary but fixed: the ASCII of "cdcstate".
LOCK_KEY = 0x6364637374617465


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def available() -> list[Migration]:
    """The migrations shipped with this package, by version."""
    found: dict[int, Migration] = {}
    for entry in resources.files(__package__).joinpath("migrations").iterdir():
        match = _FILE.match(entry.name)
        if not match:
            continue
        version = int(match.group(1))
        if version in found:
            raise ConfigError(f"two state migrations have version {version}: {entry.name}")
        found[version] = Migration(version, match.group(2), entry.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


async def applied(conn: asyncpg.Connection) -> list[int]:
    if not await conn.fetchval(_Q.has_bookkeeping):
        return []
    return [row["version"] for row in await conn.fetch(_Q.applied_versions)]


async def pending(conn: asyncpg.Connection) -> list[Migration]:
    done = set(await applied(conn))
    return [m for m in available() if m.version not in done]


async def migrate(conn: asyncpg.Connection) -> list[int]:
    """Apply every pending migration; the versions applied by this call (empty when up to date)."""
    await conn.execute(_Q.lock, LOCK_KEY)
    try:
        if not await conn.fetchval(_Q.has_bookkeeping):
            await conn.execute(_Q.create_bookkeeping)
        done = set(await applied(conn))
        versions: list[int] = []
        for migration in available():
            if migration.version in done:
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(_Q.record, migration.version, migration.name)
            log.info("migration applied", version=migration.version, name=migration.name)
            versions.append(migration.version)
        return versions
    finally:
        if not conn.is_closed():
            await conn.execute(_Q.unlock, LOCK_KEY)


async def require_current(conn: asyncpg.Connection) -> None:
    """Raise a one-line error when the state database lacks migrations this code needs."""
    missing = await pending(conn)
    if missing:
        names = ", ".join(f"{m.version:04d}_{m.name}" for m in missing)
        raise ConfigError(f"the state database lacks migrations {names}: run `cdc db migrate`")
