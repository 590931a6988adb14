"""Reading PostgreSQL's text output (what capture receives) into JSON-ready Python values, chosen by type OID.

Capture connections run with `DateStyle=ISO` and `TimeZone=UTC`, so temporal values arrive as ISO text with a space
between date and time; they leave as ISO-8601 strings (`T` separator, offsets as `+HH:MM`). Values that have no
JSON form (numeric, NaN, infinities, BC dates) stay strings, exactly as PostgreSQL printed them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from cdc.values.vocabulary import (
    BOOL,
    DATE,
    FLOAT4,
    FLOAT8,
    INT2,
    INT4,
    INT8,
    JSON,
    JSONB,
    NUMERIC,
    OID,
    TIME,
    TIMESTAMP,
    TIMESTAMPTZ,
    TIMETZ,
    UUID,
)

Converter = Callable[[str], Any]


def as_text(text: str) -> str:
    return text


def as_bool(text: str) -> bool:
    return text == "t"


def as_float(text: str) -> float | str:
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        return text  # 'NaN', 'Infinity', '-Infinity' have no JSON number
    return value


def as_json(text: str) -> Any:
    return json.loads(text)


def _offset(zone: str) -> str:
    """'+00' → '+00:00'; '+05:30' and '+05:30:15' (historical local mean time) are kept."""
    return zone + ":00" if len(zone) == 3 else zone


def _split_zone(clock: str) -> tuple[str, str]:
    if clock[-3:-2] in ("+", "-"):  # the usual '+00'
        return clock[:-3], clock[-3:] + ":00"
    for i in range(len(clock) - 1, 0, -1):
        if clock[i] in "+-":
            return clock[:i], _offset(clock[i:])
    return clock, ""


def as_timestamp(text: str) -> str:
    date, sep, clock = text.partition(" ")
    if not sep or " " in clock:  # 'infinity', '-infinity', '... BC'
        return text
    return f"{date}T{clock}"


def as_timestamptz(text: str) -> str:
    date, sep, clock = text.partition(" ")
    if not sep or " " in clock:
        return text
    if clock[-3:-2] in ("+", "-"):  # the usual '+00' (capture's sessions run in UTC)
        return f"{date}T{clock}:00"
    time, zone = _split_zone(clock)
    return f"{date}T{time}{zone}"


def as_timetz(text: str) -> str:
    time, zone = _split_zone(text)
    return f"{time}{zone}"


CONVERTERS: dict[int, Converter] = {
    BOOL: as_bool,
    INT2: int,
    INT4: int,
    INT8: int,
    OID: int,
    FLOAT4: as_float,
    FLOAT8: as_float,
    NUMERIC: as_text,
    DATE: as_text,
    TIME: as_text,
    TIMESTAMP: as_timestamp,
    TIMESTAMPTZ: as_timestamptz,
    TIMETZ: as_timetz,
    UUID: as_text,
    JSON: as_json,
    JSONB: as_json,
}


def converter(type_oid: int) -> Converter:
    """How to turn a value of this type into a JSON-ready value (text for every type not listed)."""
    return CONVERTERS.get(type_oid, as_text)
