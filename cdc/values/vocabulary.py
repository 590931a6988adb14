"""PostgreSQL's column types as the sync knows them: each type's catalog name (`pg_type.typname`) and the names SQL
also spells it by, its family, the integer bounds, the boolean spellings, and the type OIDs capture reads by."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

KINDS: dict[str, str] = {
    "text": "text", "varchar": "text", "bpchar": "text", "char": "text", "name": "text", "citext": "text",
    "int2": "int", "int4": "int", "int8": "int",
    "numeric": "numeric",
    "float4": "float", "float8": "float",
    "bool": "bool",
    "date": "date",
    "timestamp": "timestamp",
    "timestamptz": "timestamptz",
    "uuid": "uuid",
}
"""The families values are converted into and compared in, by `pg_type.typname`."""

JSON_TYPES = frozenset({"json", "jsonb"})
"""Written as JSON text; no family: configuration values are not converted into them, nor filtered on them."""

ALIASES: dict[str, str] = {
    "character varying": "varchar", "character": "bpchar", "integer": "int4", "int": "int4",
    "smallint": "int2", "bigint": "int8", "decimal": "numeric", "real": "float4",
    "double precision": "float8", "boolean": "bool", "timestamp without time zone": "timestamp",
    "timestamp with time zone": "timestamptz",
}
"""Other spellings of a type, as SQL and `format_type` write them, by the catalog name they stand for."""

FAMILIES: dict[str, str] = {**KINDS, **{alias: KINDS[name] for alias, name in ALIASES.items()},
                            **{name: "json" for name in JSON_TYPES}}
"""Every spelling of a known type, by its family ('json' for json and jsonb): one lookup, for the write path."""

TEXT_TYPES = frozenset(name for name, family in FAMILIES.items() if family == "text")

INTEGER_TYPES: dict[str, int] = {"int2": 2**15, "int4": 2**31, "int8": 2**63, "smallint": 2**15, "integer": 2**31,
                                 "int": 2**31, "bigint": 2**63}
"""Each integer type's bound: its values are -bound <= n < bound."""

NUMBER_KINDS = frozenset({"int", "numeric", "float"})
TIME_KINDS = frozenset({"date", "timestamp", "timestamptz"})

TRUE_SPELLINGS = frozenset({"t", "true", "y", "yes", "on", "1"})
FALSE_SPELLINGS = frozenset({"f", "false", "n", "no", "off", "0"})
"""How a boolean is written as text (any case, surrounding spaces ignored): PostgreSQL's own spellings but the
prefixes it also takes ('tr', 'fal', ...)."""


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
    if isinstance(value, dt.datetime):
        return "timestamp" if value.tzinfo is None else "timestamptz"
    if isinstance(value, dt.date):
        return "date"
    if isinstance(value, uuid.UUID):
        return "uuid"
    return None


# Type OIDs (pg_type.oid), fixed for the built-in types: capture reads values by them.
BOOL = 16
INT8 = 20
INT2 = 21
INT4 = 23
TEXT = 25
OID = 26
JSON = 114
FLOAT4 = 700
FLOAT8 = 701
BPCHAR = 1042
VARCHAR = 1043
DATE = 1082
TIME = 1083
TIMESTAMP = 1114
TIMESTAMPTZ = 1184
TIMETZ = 1266
NUMERIC = 1700
UUID = 2950
JSONB = 3802
