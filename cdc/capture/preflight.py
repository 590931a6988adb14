"""What a source database must offer before capture starts, checked up front so failures read as one line:
logical WAL, a role allowed to replicate (REPLICATION or superuser; whether pg_hba.conf admits its replication
connection shows when capture connects), UTF-8, and every mapped table present with a primary key."""

from __future__ import annotations

from collections import defaultdict

import asyncpg

from cdc.capture.transactions import TableName
from cdc.catalog import read_tables
from cdc.errors import ConfigError


async def check_source(conn: asyncpg.Connection, system: str,
                       tables: list[TableName]) -> dict[TableName, tuple[str, ...]]:
    """Raise ConfigError naming the first thing missing; return each table's primary-key columns."""
    server = await conn.fetchrow(
        "SELECT current_setting('wal_level') AS wal_level, current_setting('server_encoding') AS encoding, "
        "       r.rolsuper OR r.rolreplication AS may_decode, current_user AS role, current_database() AS db "
        "  FROM pg_catalog.pg_roles r WHERE r.rolname = current_user")
    where = f"{system} database {server['db']!r}"
    if server["wal_level"] != "logical":
        raise ConfigError(f"{where}: wal_level is {server['wal_level']!r}; capture needs wal_level=logical "
                          "(set it in postgresql.conf or with ALTER SYSTEM, then restart PostgreSQL)")
    if not server["may_decode"]:
        role = server["role"]
        raise ConfigError(f"role {role} may not start replication on {system}: ALTER ROLE {role} REPLICATION "
                          "(and a pg_hba.conf 'replication' line)")
    if server["encoding"] != "UTF8":
        raise ConfigError(f"{where}: server encoding is {server['encoding']}; capture reads UTF8 databases only")

    by_schema: dict[str, list[str]] = defaultdict(list)
    for schema, table in tables:
        by_schema[schema].append(table)
    keys: dict[TableName, tuple[str, ...]] = {}
    for schema, names in by_schema.items():
        found = await read_tables(conn, schema, names)
        for name in names:
            table = found.get(name)
            if table is None:
                raise ConfigError(f"{where}: mapped table {schema}.{name} does not exist")
            if not table.primary_key:
                raise ConfigError(f"{where}: mapped table {schema}.{name} has no primary key; "
                                  "capture keys events by it")
            keys[(schema, name)] = tuple(table.primary_key)
    return keys
