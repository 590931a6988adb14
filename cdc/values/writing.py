"""Writing a value into a column: `coerce` (an event's or the file's value -> the Python value asyncpg writes for a
column type) and `convert` (the same rule, by family, for values compared in Python). The rules are in
`cdc/values/__init__.py`."""

from __future__ import annotations

import datetime as dt
import json
import math
import struct
import uuid
from collections.abc import Callable, Sequence
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from cdc import temporal
from cdc.temporal import DAY_US, Beyond
from cdc.values.vocabulary import FALSE_SPELLINGS, FAMILIES, INTEGER_TYPES, TEXT_TYPES, TRUE_SPELLINGS, type_name
from schemas.key_text import KeyTextError
from schemas.key_text import decode as decode_key

EPOCH = dt.date(1970, 1, 1)
EPOCH_TS = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MIDNIGHT = dt.time()
_FLOAT4 = struct.Struct("<f")  # standard size: packing past float4's range raises OverflowError


class CoercionError(ValueError):
    """A value that cannot be stored in the destination column (a poison value)."""


def coerce(value: Any, type_name: str, max_length: int | None = None, scale: int | None = None) -> Any:
    """The value as asyncpg writes it into a column of `type_name` (a catalog name or an alias; an unknown type
    takes the value as it is). Text longer than the column is truncated; a number is rounded to the column's scale
    as PostgreSQL would store it (half away from zero)."""
    if value is None:
        return None
    if type(value) is str and type_name in TEXT_TYPES:  # the common case, without the dispatch below
        result = _checked_text(value, value)
    else:
        writer = _WRITERS.get(type_name)
        if writer is None:
            result = value
        else:
            write, catalog_name = writer
            try:
                result = write(value, catalog_name)
            except CoercionError:
                raise
            except (ValueError, TypeError, InvalidOperation, OverflowError, ArithmeticError) as exc:
                detail = "" if isinstance(exc, InvalidOperation) else f": {exc}"  # decimal's say nothing more
                raise CoercionError(f"{_show(value)} is not a valid {type_name}{detail}") from None
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


_WIDEST = {"text": "text", "int": "int8", "numeric": "numeric", "float": "float8", "bool": "bool", "date": "date",
           "timestamp": "timestamp", "timestamptz": "timestamptz", "uuid": "uuid"}


def convert(value: Any, kind: str) -> Any:
    """`value` as a value of family `kind` (`coerce` into the family's widest type); ValueError (a CoercionError)
    when it is not one."""
    if kind not in _WIDEST:
        raise ValueError(f"no conversion into {kind!r} columns")
    try:
        return coerce(value, _WIDEST[kind])
    except CoercionError:
        raise CoercionError(f"{value!r} is not a valid {kind} value") from None


def key_values(key: str, columns: Sequence[str], types: Sequence[str]) -> dict[str, Any]:
    """The typed key columns of a key text (CoercionError when a part is not a value of its column)."""
    try:
        parts = decode_key(key, len(columns))
    except KeyTextError as exc:
        raise CoercionError(str(exc)) from None
    return {c: coerce(part, t) for c, part, t in zip(columns, parts, types, strict=True)}


# ---------------------------------------------------------------- one writer per family

def _text(value: Any, type_name: str) -> str:
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, Decimal):
        text = format(value, "f")
    elif isinstance(value, float):
        text = _float_text(value)
    elif isinstance(value, dt.datetime | dt.date | dt.time):
        text = value.isoformat()
    elif isinstance(value, dict | list):
        text = json.dumps(value)
    else:
        text = str(value)
    return _checked_text(text, value)


def _float_text(value: float) -> str:
    if math.isfinite(value):
        return repr(value)
    return "NaN" if value != value else "Infinity" if value > 0 else "-Infinity"


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


def _int(value: Any, type_name: str) -> int:
    if isinstance(value, bool):
        raise CoercionError(f"{value} is a boolean, not an integer")
    if isinstance(value, int):
        number = value
    else:
        exact = value if isinstance(value, Decimal) else Decimal(str(value).strip())
        if not exact.is_finite() or exact != exact.to_integral_value():
            raise CoercionError(f"{_show(value)} is not an integer")
        if exact.adjusted() > 19:  # past every integer type, without making the huge int first
            raise CoercionError(f"{_show(value)} is out of range for {type_name}")
        number = int(exact)
    bound = INTEGER_TYPES[type_name]
    if not -bound <= number < bound:
        raise CoercionError(f"{number} is out of range for {type_name}")
    return number


def _numeric(value: Any, type_name: str) -> Decimal:
    if isinstance(value, bool):
        raise CoercionError(f"{value} is a boolean, not a number")
    # NaN and ±Infinity are numeric values PostgreSQL holds (±Infinity since version 14): carried as they are
    number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    if number.is_snan():
        raise CoercionError(f"{_show(value)} is not a number PostgreSQL reads")
    return number


def _float(value: Any, type_name: str) -> float:
    if isinstance(value, bool):
        raise CoercionError(f"{value} is a boolean, not a number")
    number = value if type(value) is float else float(value.strip() if isinstance(value, str) else value)
    if math.isinf(number) and not (isinstance(value, float) or _spells_infinity(value)):
        raise CoercionError(f"{_show(value)} is out of range for {type_name}")
    if number == 0 and not isinstance(value, float) and Decimal(str(value).strip()) != 0:
        raise CoercionError(f"{_show(value)} is out of range for {type_name} (underflow)")
    if type_name == "float4" and math.isfinite(number):
        narrowed = _FLOAT4.unpack(_FLOAT4.pack(number))[0]  # OverflowError past float4's range
        if narrowed == 0 and number != 0:
            raise CoercionError(f"{_show(value)} is out of range for {type_name} (underflow)")
        return narrowed
    return number


def _spells_infinity(value: Any) -> bool:
    return (isinstance(value, Decimal) and value.is_infinite()) or (isinstance(value, str) and "inf" in value.lower())


def _bool(value: Any, type_name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in TRUE_SPELLINGS:
            return True
        if text in FALSE_SPELLINGS:
            return False
    elif type(value) is int and value in (0, 1):
        return bool(value)
    raise CoercionError(f"{_show(value)} is not a boolean")


def _uuid(value: Any, type_name: str) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str):
        return uuid.UUID(value.strip())
    raise CoercionError(f"{_show(value)} is not a uuid")


def _date(value: Any, type_name: str) -> Any:
    if isinstance(value, Beyond):
        return value if value.kind == "date" else _day(value, value)
    if isinstance(value, dt.datetime):
        return _day(value, value)
    if isinstance(value, dt.date):
        return value
    if isinstance(value, bool):
        raise CoercionError(f"{value} is a boolean, not a date")
    if isinstance(value, int):
        return EPOCH + dt.timedelta(days=value)  # Debezium io.debezium.time.Date
    if not isinstance(value, str):
        raise CoercionError(f"{_show(value)} is not a date")
    text = value.strip()
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        pass
    moment = temporal.parse("timestamp", text)  # a timestamp's text, or one Python cannot hold (BC, infinity, ...)
    if moment is None:
        raise CoercionError(f"{_show(value)} is not a valid date")
    return _day(moment, value)


def _day(moment: Any, value: Any) -> Any:
    """The day of a timestamp (an aware one in UTC) at midnight; a time of day is refused, not cut."""
    if isinstance(moment, Beyond):
        if moment in ("infinity", "-infinity") or moment.ticks % DAY_US == 0:
            return moment.as_kind("date")
    else:
        if moment.tzinfo is not None:
            moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
        if moment.time() == _MIDNIGHT:
            return moment.date()
    raise CoercionError(f"{_show(value)} has a time of day: a date column would lose it")


def _timestamp(value: Any, type_name: str) -> Any:
    if isinstance(value, Beyond):
        return value.as_kind(type_name)  # type: ignore[arg-type]
    moment = _moment(value, type_name)
    if isinstance(moment, Beyond):
        return moment
    if type_name == "timestamptz":
        return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _moment(value: Any, type_name: str) -> Any:
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day)
    if isinstance(value, int) and not isinstance(value, bool):
        # Debezium: MicroTimestamp (µs) or Timestamp (ms) since the epoch
        return EPOCH_TS + dt.timedelta(microseconds=value if abs(value) >= 10**14 else value * 1000)
    if isinstance(value, float):
        return EPOCH_TS + dt.timedelta(seconds=value / 1_000_000 if abs(value) >= 10**14 else value / 1000)
    if not isinstance(value, str):
        raise CoercionError(f"{_show(value)} is not a {type_name}")
    text = value.strip().replace(" ", "T", 1)
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        pass
    parsed = temporal.parse(type_name, value)  # type: ignore[arg-type]  # infinity, BC, years past 9999
    if parsed is None:
        raise CoercionError(f"{_show(value)} is not a valid {type_name}")
    return parsed


def _json(value: Any, type_name: str) -> str:
    """JSON text: a text that is JSON is taken as it is (Debezium's form), any other value is written as JSON (ours:
    capture reads a json column into the value it holds)."""
    if isinstance(value, str):
        try:
            json.loads(value)
        except ValueError:
            return json.dumps(value)
        return value
    return json.dumps(value)


_BY_FAMILY: dict[str, Callable[[Any, str], Any]] = {
    "text": _text, "int": _int, "numeric": _numeric, "float": _float, "bool": _bool, "uuid": _uuid, "date": _date,
    "timestamp": _timestamp, "timestamptz": _timestamp, "json": _json,
}
_WRITERS: dict[str, tuple[Callable[[Any, str], Any], str]] = {
    name: (_BY_FAMILY[family], type_name(name)) for name, family in FAMILIES.items()}
"""Each spelling of a type: its family's writer, and the catalog name the writer is given."""


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
