"""The publication and the logical replication slot capture reads one system through.

Both are named `<topic prefix>_<system>` (`cdc_erp`, `cdc_crm` by default): slot names are cluster-wide, so two
installations (or test runs) sharing a PostgreSQL cluster keep apart by their topic prefix. The publication is
created before the slot: pgoutput looks publications up as of each decoded change, so changes older than the
publication could not be decoded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import asyncpg

from cdc.capture.lsn import parse_lsn
from cdc.capture.transactions import TableName
from cdc.database import qualified, quote_ident
from cdc.errors import ConfigError
from cdc.settings import Settings

PLUGIN = "pgoutput"
PUBLISH = "insert, update, delete, truncate"


def slot_name(settings: Settings, system: str) -> str:
    return re.sub(r"[^a-z0-9_]", "_", f"{settings.topic_prefix}_{system}".lower())[:63]


def publication_name(settings: Settings, system: str) -> str:
    return slot_name(settings, system)


@dataclass(frozen=True)
class SlotState:
    name: str
    plugin: str
    database: str
    active: bool
    active_pid: int | None
    restart_lsn: int | None
    confirmed_flush_lsn: int | None
    wal_status: str | None


async def read_slot(conn: asyncpg.Connection, name: str) -> SlotState | None:
    row = await conn.fetchrow(
        "SELECT slot_name, plugin, database, active, active_pid, restart_lsn::text AS restart_lsn, "
        "       confirmed_flush_lsn::text AS confirmed_flush_lsn, wal_status "
        "  FROM pg_catalog.pg_replication_slots WHERE slot_name = $1", name)
    if row is None:
        return None
    return SlotState(
        name=row["slot_name"], plugin=row["plugin"] or "", database=row["database"] or "", active=row["active"],
        active_pid=row["active_pid"],
        restart_lsn=parse_lsn(row["restart_lsn"]) if row["restart_lsn"] else None,
        confirmed_flush_lsn=parse_lsn(row["confirmed_flush_lsn"]) if row["confirmed_flush_lsn"] else None,
        wal_status=row["wal_status"])


async def ensure_publication(conn: asyncpg.Connection, name: str, tables: list[TableName]) -> str:
    """Create the publication, or make its table set match `tables`. Returns 'created', 'altered' or 'unchanged'."""
    listed = ", ".join(qualified(schema, table) for schema, table in tables)
    pub = await conn.fetchrow(
        "SELECT puballtables, pubinsert AND pubupdate AND pubdelete AND pubtruncate AS publishes_all "
        "  FROM pg_catalog.pg_publication WHERE pubname = $1", name)
    try:
        if pub is None:
            await conn.execute(f"CREATE PUBLICATION {quote_ident(name)} FOR TABLE {listed} "
                               f"WITH (publish = '{PUBLISH}')")
            return "created"
        if pub["puballtables"]:
            raise ConfigError(f"publication {name} exists FOR ALL TABLES; capture manages its own publication "
                              f"of the mapped tables: drop it (DROP PUBLICATION {name}) and start capture again")
        current = {(r["schemaname"], r["tablename"]) for r in await conn.fetch(
            "SELECT schemaname, tablename FROM pg_catalog.pg_publication_tables WHERE pubname = $1", name)}
        changed = False
        if current != set(tables):
            await conn.execute(f"ALTER PUBLICATION {quote_ident(name)} SET TABLE {listed}")
            changed = True
        if not pub["publishes_all"]:
            await conn.execute(f"ALTER PUBLICATION {quote_ident(name)} SET (publish = '{PUBLISH}')")
            changed = True
        return "altered" if changed else "unchanged"
    except (asyncpg.InsufficientPrivilegeError, asyncpg.WrongObjectTypeError) as exc:
        raise ConfigError(f"cannot set up publication {name}: {exc}") from None


async def ensure_slot(conn: asyncpg.Connection, name: str) -> tuple[SlotState, bool]:
    """The slot, created (with pgoutput) when missing. Returns (state, created)."""
    state = await read_slot(conn, name)
    created = False
    if state is None:
        await create_slot(conn, name)
        created = True
        state = await read_slot(conn, name)
        assert state is not None
    database = await conn.fetchval("SELECT current_database()")
    if state.plugin != PLUGIN:
        raise ConfigError(f"replication slot {name} uses plugin {state.plugin!r}, not {PLUGIN}; "
                          f"drop it with `cdc capture reset` (unpublished changes are lost)")
    if state.database != database:
        raise ConfigError(f"replication slot {name} belongs to database {state.database!r}, not {database!r}; "
                          "use another CDC_TOPIC_PREFIX or drop that slot")
    return state, created


async def create_slot(conn: asyncpg.Connection, name: str) -> None:
    try:
        await conn.execute("SELECT pg_catalog.pg_create_logical_replication_slot($1, $2)", name, PLUGIN)
    except asyncpg.DuplicateObjectError:
        return
    except asyncpg.PostgresError as exc:
        raise slot_error(name, exc) from None


async def drop_slot(conn: asyncpg.Connection, name: str) -> bool:
    """Drop the slot if it exists; False when there was none. A slot in use raises ConfigError."""
    state = await read_slot(conn, name)
    if state is None:
        return False
    if state.active:
        raise ConfigError(f"replication slot {name} is in use by backend {state.active_pid}; stop capture first")
    try:
        await conn.execute("SELECT pg_catalog.pg_drop_replication_slot($1)", name)
    except asyncpg.UndefinedObjectError:
        return False
    except asyncpg.ObjectInUseError:
        raise ConfigError(f"replication slot {name} is in use; stop capture first") from None
    return True


def slot_error(name: str, exc: asyncpg.PostgresError) -> ConfigError | asyncpg.PostgresError:
    """A slot-level failure a user must fix, as a ConfigError; anything else unchanged."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if PLUGIN in text or "output plugin" in text or isinstance(exc, asyncpg.UndefinedFileError):
        return ConfigError(f"the {PLUGIN} output plugin is unavailable for slot {name}: {text}")
    if isinstance(exc, asyncpg.ConfigurationLimitExceededError) or "replication slots" in text:
        return ConfigError(f"cannot create replication slot {name}: {text} (raise max_replication_slots)")
    if isinstance(exc, asyncpg.InsufficientPrivilegeError):
        return ConfigError(f"replication slot {name}: {text}")
    if isinstance(exc, asyncpg.UndefinedObjectError) and "replication slot" in text:
        return ConfigError(f"replication slot {name} was dropped while capture ran; start capture again to create "
                           "it (changes committed in between are not captured)")
    if isinstance(exc, asyncpg.UndefinedObjectError) and "publication" in text:
        return ConfigError(f"slot {name}: {text}; the slot still holds changes decoded through it: "
                           "reset the slot with `cdc capture reset` (unpublished changes are lost)")
    return exc
