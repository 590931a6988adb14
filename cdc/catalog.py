"""The live catalog: tables, their columns and keys as PostgreSQL describes them, and the Python values each
column type takes (what asyncpg returns for it)."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any

import asyncpg

from cdc.mapping.model import MappingFile
from cdc.pair import System

KINDS: dict[str, str] = {
    "text": "text", "varchar": "text", "bpchar": "text", "name": "text", "citext": "text",
    "int2": "int", "int4": "int", "int8": "int",
    "numeric": "numeric",
    "float4": "float", "float8": "float",
    "bool": "bool",
    "date": "date",
    "timestamp": "timestamp",
    "timestamptz": "timestamptz",
    "uuid": "uuid",
}
"""The type families values are converted into, by `pg_type.typname`."""

ALIASES: dict[str, str] = {
    "character varying": "varchar", "character": "bpchar", "integer": "int4", "int": "int4",
    "smallint": "int2", "bigint": "int8", "decimal": "numeric", "real": "float4",
    "double precision": "float8", "boolean": "bool", "timestamp without time zone": "timestamp",
    "timestamp with time zone": "timestamptz",
}

NUMBER_KINDS = frozenset({"int", "numeric", "float"})
TIME_KINDS = frozenset({"date", "timestamp", "timestamptz"})


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


def type_name(name: str) -> str:
    """The catalog's name (`pg_type.typname`) for a type written either way: 'integer' -> 'int4'."""
    lowered = name.strip().lower()
    return ALIASES.get(lowered, lowered)


def kind_of(name: str) -> str | None:
    """The family of a column type (text, int, numeric, float, bool, date, timestamp, timestamptz, uuid)."""
    return KINDS.get(type_name(name))


def kind_of_value(value: Any) -> str | None:
    """The family of the Python value asyncpg returns for a column."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, Decimal):
        return "numeric"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "text"
    if isinstance(value, datetime):
        return "timestamp" if value.tzinfo is None else "timestamptz"
    if isinstance(value, date):
        return "date"
    if isinstance(value, uuid.UUID):
        return "uuid"
    return None


_INTEGER = re.compile(r"^[+-]?\d+$")
_TRUE = frozenset({"true", "t", "yes", "y", "on", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "off", "0"})


def convert(value: Any, kind: str) -> Any:
    """`value` as the Python value of a column of family `kind`; ValueError when it does not fit.

    Conversions are the unsurprising ones only: no bool from or to text other than the usual spellings, no
    fractions dropped, no timestamp silently cut to a date.
    """
    if value is None:
        return None
    convert_to = _CONVERTERS.get(kind)
    if convert_to is None:
        raise ValueError(f"no conversion into {kind!r} columns")
    try:
        result = convert_to(value)
    except (ValueError, TypeError, InvalidOperation, ArithmeticError):
        result = None
    if result is None:
        raise ValueError(f"{value!r} is not a valid {kind} value")
    return result


def _text(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, date | uuid.UUID):
        return value.isoformat() if isinstance(value, date) else str(value)
    return str(value) if isinstance(value, str | int | Decimal | float) else None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, Decimal | float):
        return int(value) if value == int(value) else None
    if isinstance(value, str) and _INTEGER.match(value.strip()):
        return int(value.strip())
    return None


def _numeric(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        return None
    number = Decimal(str(value).strip())
    return number if number.is_finite() else None


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        return None
    return float(value)


def _bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        return True if text in _TRUE else False if text in _FALSE else None
    return None


def _date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return None
    if isinstance(value, date):
        return value
    return date.fromisoformat(value.strip()) if isinstance(value, str) else None


def _datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime.combine(value, time())
    return datetime.fromisoformat(value.strip()) if isinstance(value, str) else None


def _timestamp(value: Any) -> datetime | None:
    moment = _datetime(value)
    if moment is not None and moment.tzinfo is not None:
        return moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def _timestamptz(value: Any) -> datetime | None:
    moment = _datetime(value)
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


def _uuid(value: Any) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    return uuid.UUID(value.strip()) if isinstance(value, str) else None


_CONVERTERS = {
    "text": _text, "int": _int, "numeric": _numeric, "float": _float, "bool": _bool, "date": _date,
    "timestamp": _timestamp, "timestamptz": _timestamptz, "uuid": _uuid,
}


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
