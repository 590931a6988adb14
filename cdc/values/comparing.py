"""The canonical form of a typed value, in which values are compared and fingerprinted, and a record's key text."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from schemas.key_text import encode as encode_key

_AS_IS = frozenset({str, int, bool})  # canonical already (checked by exact type first: most values are these)


def canonical(value: Any) -> Any:
    """A JSON-able form of a typed value (as `coerce` makes it, or asyncpg reads it); equal forms mean equal
    database values."""
    if type(value) in _AS_IS or value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, Decimal):
        if value == 0:
            return "0"
        return format(value.normalize(), "f")
    if isinstance(value, float):
        return canonical(Decimal(repr(value)))
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            return value.astimezone(dt.UTC).isoformat()
        return value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return str(value)


def key_text(row: Mapping[str, Any], columns: Sequence[str]) -> str:
    """The record's key as one text (`schemas.key_text`) from its typed key columns."""
    if len(columns) == 1:
        return str(canonical(row[columns[0]]))
    values = [row.get(c) for c in columns]
    return encode_key([None if v is None else str(canonical(v)) for v in values])
