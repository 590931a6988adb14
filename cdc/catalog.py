"""The live catalog: tables, their columns and keys as PostgreSQL describes them (how their values are typed is
`cdc.values`)."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from cdc.mapping.model import MappingFile
from cdc.pair import System
from cdc.values import kind_of


@dataclass(frozen=True)
class Column:
    name: str
    type_name: str
    max_length: int | None = None
    nullable: bool = True
    has_default: bool = False
    scale: int | None = None
    """Digits after the decimal point of a `numeric(p, s)` column: values are rounded to it on write."""
    default: str | None = None
    """The column's default expression as PostgreSQL prints it (`pg_get_expr`), e.g. `nextval('s'::regclass)`."""
    identity: str = ""
    """'a' (GENERATED ALWAYS AS IDENTITY), 'd' (BY DEFAULT) or '' (none)."""
    generated: bool = False
    """A generated column (GENERATED ALWAYS AS (…) STORED): never written."""

    @property
    def kind(self) -> str | None:
        return kind_of(self.type_name)

    def describe(self) -> str:
        return f"{self.type_name}({self.max_length})" if self.max_length else self.type_name


@dataclass(frozen=True)
class Table:
    name: str
    schema: str
    columns: dict[str, Column]
    primary_key: list[str]


_COLUMNS = """
SELECT c.relname AS table_name,
       a.attname AS column_name,
       base.typname AS type_name,
       CASE WHEN base.typname IN ('varchar', 'bpchar') AND typmod.value > 4
            THEN typmod.value - 4 END AS max_length,
       CASE WHEN base.typname = 'numeric' AND typmod.value > 4
            THEN (typmod.value - 4) & 65535 END AS scale,
       NOT a.attnotnull AND NOT t.typnotnull AS nullable,
       a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '' OR t.typdefault IS NOT NULL AS has_default,
       CASE WHEN a.attgenerated = '' THEN coalesce(pg_get_expr(d.adbin, d.adrelid), t.typdefault) END
           AS default_expression,
       a.attidentity::text AS identity,
       a.attgenerated <> '' AS generated
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
  JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
  JOIN pg_catalog.pg_type base ON base.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
  LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
  CROSS JOIN LATERAL (SELECT CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END AS value) typmod
 WHERE n.nspname = $1 AND c.relname = ANY($2::text[]) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
 ORDER BY c.relname, a.attnum
"""

_PRIMARY_KEYS = """
SELECT c.relname AS table_name, a.attname AS column_name
  FROM pg_catalog.pg_index i
  JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
  CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, position)
  JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
 WHERE i.indisprimary AND n.nspname = $1 AND c.relname = ANY($2::text[])
 ORDER BY c.relname, k.position
"""


async def read_tables(conn: asyncpg.Connection, schema: str, tables: list[str]) -> dict[str, Table]:
    """The named tables of `schema` that exist, by name (a missing table is simply absent)."""
    columns: dict[str, dict[str, Column]] = {}
    for row in await conn.fetch(_COLUMNS, schema, list(tables)):
        columns.setdefault(row["table_name"], {})[row["column_name"]] = Column(
            name=row["column_name"], type_name=row["type_name"], max_length=row["max_length"],
            nullable=row["nullable"], has_default=row["has_default"], scale=row["scale"],
            default=row["default_expression"], identity=row["identity"], generated=row["generated"])
    keys: dict[str, list[str]] = {}
    for row in await conn.fetch(_PRIMARY_KEYS, schema, list(tables)):
        keys.setdefault(row["table_name"], []).append(row["column_name"])
    return {name: Table(name=name, schema=schema, columns=cols, primary_key=keys.get(name, []))
            for name, cols in columns.items()}


async def read_mapped_tables(conn: asyncpg.Connection, mapping_file: MappingFile,
                             system: System) -> dict[str, Table]:
    """The tables `system`'s side of the mappings names (in whichever schemas they name), by table name."""
    by_schema: dict[str, list[str]] = {}
    for m in mapping_file.mappings:
        side = m.side(system)
        by_schema.setdefault(side.schema_, []).append(side.table)
    tables: dict[str, Table] = {}
    for schema, names in by_schema.items():
        tables.update(await read_tables(conn, schema, sorted(set(names))))
    return tables
