"""Typing values for a column, and the canonical form used to compare and fingerprint them.

Events carry values as JSON (ours: ISO dates, decimal strings; Debezium's: days / micro- or milliseconds since the
epoch, numbers). `coerce` turns any of those into the Python value asyncpg writes for a column type; `canonical`
turns a typed value into a JSON-able form that compares equal exactly when the database values are equal.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from cdc import temporal
from cdc.temporal import Beyond
from schemas.key_text import KeyTextError
from schemas.key_text import decode as decode_key
from schemas.key_text import encode as encode_key

INTEGER_TYPES = {"int2": 2**15, "int4": 2**31, "int8": 2**63, "smallint": 2**15, "integer": 2**31,
                 "bigint": 2**63}
NUMERIC_TYPES = {"numeric", "decimal"}
FLOAT_TYPES = {"float4", "float8", "real", "double precision"}
TEXT_TYPES = {"text", "varchar", "bpchar", "char", "character varying", "name", "citext"}
TEMPORAL_TYPES = {"date", "timestamp", "timestamptz"}
EPOCH = dt.date(1970, 1, 1)
EPOCH_TS = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_AS_IS = frozenset({str, int, bool})  # canonical already (checked by exact type first: most values are these)


class CoercionError(ValueError):
    """A value that cannot be stored in the destination column (a poison value)."""


def coerce(value: Any, type_name: str, max_length: int | None = None, scale: int | None = None) -> Any:
    """The value as asyncpg writes it into a column of `type_name`. Text longer than the column is truncated; a
    number is rounded to the column's scale as PostgreSQL would store it (half away from zero)."""
    if value is None:
        return None
    if type(value) is str and type_name in TEXT_TYPES:  # the common case, without the dispatch of _coerce
        result = _checked_text(value, value)
    else:
        result = _coerce_any(value, type_name)
    if max_length is not None and isinstance(result, str) and len(result) > max_length:
        result = result[:max_length]
    elif scale is not None and isinstance(result, Decimal) and result.is_infinite():
        raise CoercionError(f"{_show(value)} is infinite: a numeric column of declared precision cannot hold it")
    elif scale is not None and isinstance(result, Decimal) and result.is_finite():
        try:
            result = result.quantize(Decimal(1).scaleb(-scale), rounding=ROUND_HALF_UP)
        except InvalidOperation:
            raise CoercionError(f"{_show(value)} does not fit a numeric column with {scale} decimals") from None
    return result


def _coerce_any(value: Any, type_name: str) -> Any:
    try:
        return _coerce(value, type_name)
    except CoercionError:
        raise
    except (ValueError, TypeError, InvalidOperation, OverflowError, ArithmeticError) as exc:
        raise CoercionError(f"{_show(value)} is not a valid {type_name}: {exc}") from None


def _coerce(value: Any, type_name: str) -> Any:
    if type_name in TEXT_TYPES:
        if isinstance(value, str):
            text = value
        elif isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, Decimal):
            text = format(value, "f")
        elif isinstance(value, dt.datetime | dt.date):
            text = value.isoformat()
        else:
            text = str(value)
        return _checked_text(text, value)
    if type_name in INTEGER_TYPES:
        if isinstance(value, bool):
            raise CoercionError(f"{value} is a boolean, not an integer")
        number = Decimal(str(value).strip()) if not isinstance(value, int) else value
        if isinstance(number, Decimal):
            if not number.is_finite() or number != number.to_integral_value():
                raise CoercionError(f"{_show(value)} is not an integer")
            number = int(number)
        bound = INTEGER_TYPES[type_name]
        if not -bound <= number < bound:
            raise CoercionError(f"{number} is out of range for {type_name}")
        return number
    if type_name in NUMERIC_TYPES:
        if isinstance(value, bool):
            raise CoercionError(f"{value} is a boolean, not a number")
        # NaN and ±Infinity are numeric values PostgreSQL holds (±Infinity since version 14): carried as they are
        return value if isinstance(value, Decimal) else Decimal(str(value).strip())
    if type_name in FLOAT_TYPES:
        return float(value)  # NaN and ±Infinity included, as PostgreSQL's float columns hold them
    if type_name in ("bool", "boolean"):
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("t", "true", "1", "yes", "y", "on"):
            return True
        if text in ("f", "false", "0", "no", "n", "off"):
            return False
        raise CoercionError(f"{_show(value)} is not a boolean")
    if type_name == "uuid":
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    if isinstance(value, Beyond) and type_name in TEMPORAL_TYPES:
        return value.as_kind(type_name)  # type: ignore[arg-type]
    if type_name == "date":
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        if isinstance(value, int):
            return EPOCH + dt.timedelta(days=value)  # Debezium io.debezium.time.Date
        text = str(value)
        if text.endswith("BC"):
            return _beyond("date", text)
        try:
            return dt.date.fromisoformat(text[:10])
        except ValueError:
            return _beyond("date", text)
    if type_name in ("timestamptz", "timestamp"):
        try:
            moment = _timestamp(value)
        except ValueError:
            return _beyond(type_name, value)
        if type_name == "timestamptz":
            return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
        return moment.astimezone(dt.UTC).replace(tzinfo=None) if moment.tzinfo else moment
    if type_name in ("json", "jsonb"):
        return json.dumps(value) if not isinstance(value, str) else value
    return value


def _beyond(kind: str, value: Any) -> Any:
    """A date or timestamp in PostgreSQL's text that Python cannot hold (infinity, BC, years past 9999)."""
    parsed = temporal.parse(kind, str(value))  # type: ignore[arg-type]
    if parsed is None:
        raise CoercionError(f"{_show(value)} is not a valid {kind}")
    return parsed


def _checked_text(text: str, value: Any) -> str:
    """`text` if PostgreSQL can store it (no NUL, no lone surrogate)."""
    if "\x00" in text:
        raise CoercionError(f"{_show(value)} contains a NUL character")
    if not text.isascii():
        try:
            text.encode("utf-8")  # at C speed; fails exactly on lone surrogates
        except UnicodeEncodeError:
            raise CoercionError(f"{_show(value)} is not valid Unicode (lone surrogate)") from None
    return text


def _timestamp(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    if isinstance(value, int | float) and not isinstance(value, bool):
        # Debezium: MicroTimestamp (µs) or Timestamp (ms) since the epoch.
        seconds = value / 1_000_000 if abs(value) >= 10**14 else value / 1000
        return EPOCH_TS + dt.timedelta(seconds=seconds)
    text = str(value).strip().replace(" ", "T", 1)
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    return dt.datetime.fromisoformat(text)


def canonical(value: Any) -> Any:
    """A JSON-able form of a typed value; equal forms mean equal database values."""
    if type(value) in _AS_IS or value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, Decimal):
        if value == 0:
            return "0"
        text = format(value.normalize(), "f")
        return text
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


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def key_text(row: Mapping[str, Any], columns: Sequence[str]) -> str:
    """The record's key as one text (`schemas.key_text`) from its typed key columns."""
    if len(columns) == 1:
        return str(canonical(row[columns[0]]))
    values = [row.get(c) for c in columns]
    return encode_key([None if v is None else str(canonical(v)) for v in values])


def key_values(key: str, columns: Sequence[str], types: Sequence[str]) -> dict[str, Any]:
    """The typed key columns of a key text (CoercionError when a part is not a value of its column)."""
    try:
        parts = decode_key(key, len(columns))
    except KeyTextError as exc:
        raise CoercionError(str(exc)) from None
    return {c: coerce(part, t) for c, part, t in zip(columns, parts, types, strict=True)}
