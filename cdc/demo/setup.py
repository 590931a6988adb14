"""Creating the demo databases on the local cluster and applying the demo schemas to them."""

from __future__ import annotations

import asyncio
from importlib import resources

import asyncpg

from cdc.database import connect, quote_ident
from cdc.errors import ConfigError, ServiceUnavailable
from cdc.pair import SYSTEMS, System
from cdc.settings import Settings

SCHEMA_LOCK = 0x0CDC_DE30
"""Advisory lock held while a schema is applied, so two `cdc demo setup` runs do not interleave."""


def schema(system: System) -> str:
    return resources.files("cdc.demo").joinpath(f"{system}.sql").read_text(encoding="utf-8")


async def apply_schema(dsn: str, system: System) -> None:
    """Apply the demo schema of `system` to the database at `dsn`, in one transaction (idempotent)."""
    conn = await connect(dsn, role=system)
    try:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", SCHEMA_LOCK)
            await conn.execute(schema(system))
    finally:
        await conn.close()


async def create_databases(settings: Settings, *, reset: bool = False) -> dict[str, str]:
    """Create the ERP, CRM and state databases on the local cluster if missing, then apply the demo schemas.

    `reset` drops and recreates the ERP and CRM databases (never the state database), after dropping the
    logical replication slots that belong to them. A database given by an explicit `CDC_<DB>_DSN` is not
    created or dropped, only given its schema. Returns what happened to each database by name: created,
    exists, recreated or external.
    """
    wanted: dict[str, tuple[str, bool]] = {}  # role -> (database name, may be dropped)
    outcome: dict[str, str] = {}
    for role in (*SYSTEMS, "state"):
        name = getattr(settings, f"{role}_database")
        if getattr(settings, f"{role}_dsn") is not None:
            if reset and role != "state":
                raise ConfigError(f"the {role} database comes from CDC_{role.upper()}_DSN and is not dropped "
                                  "by --reset: empty its tables with `cdc demo seed --reset` instead")
            outcome[role] = "external"
        else:
            wanted[role] = (name, reset and role != "state")
    if wanted:
        admin = await connect(settings.local_dsn("postgres"), role="maintenance")
        try:
            existing = {r["datname"] for r in await admin.fetch("SELECT datname FROM pg_database")}
            for role, (name, drop) in wanted.items():
                if drop and name in existing:
                    await drop_database(admin, name)
                    existing.discard(name)
                    outcome[role] = "recreated"
                if name in existing:
                    outcome[role] = "exists"
                    continue
                try:
                    await admin.execute(f"CREATE DATABASE {quote_ident(name)}")
                except asyncpg.DuplicateDatabaseError:
                    pass  # created by someone else meanwhile
                outcome.setdefault(role, "created")
        finally:
            await admin.close()
    for system in SYSTEMS:
        await apply_schema(settings.dsn(system), system)
    return {getattr(settings, f"{role}_database"): outcome[role] for role in (*SYSTEMS, "state")}


async def drop_database(admin: asyncpg.Connection, name: str, *, attempts: int = 40) -> None:
    """Drop database `name` and the replication slots that belong to it, even while they are in use."""
    for _ in range(attempts):
        await admin.execute("SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots "
                            "WHERE database = $1 AND active_pid IS NOT NULL", name)
        try:
            await admin.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                                "WHERE database = $1", name)
            break
        except asyncpg.ObjectInUseError:  # the terminated walsender has not exited yet
            await asyncio.sleep(0.25)
    else:
        raise ServiceUnavailable(f"the replication slots of database {name} stay in use: stop capture first")
    await admin.execute(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")
