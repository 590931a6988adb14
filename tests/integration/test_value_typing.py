"""The value rules (`cdc.values`) against PostgreSQL itself. For every supported column type, values in each form
events and the mapping file carry are written through `coerce` and asyncpg into a real column: PostgreSQL holds
what `canonical` says was written, and capture's reading of PostgreSQL's text (`cdc.values.reading`), written again,
compares the same. A value `coerce` refuses, PostgreSQL refuses too, or the refusal is a documented choice."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from cdc import database
from cdc.catalog import Column, read_tables
from cdc.settings import Settings
from cdc.values import CoercionError, canonical, coerce
from cdc.values.reading import converter
from tests.integration.mapping_fixtures import scratch_database

TABLE = """
CREATE TABLE typed (
  id  serial PRIMARY KEY,
  t   text,
  v   varchar(12),
  s   int2,
  i   int4,
  l   int8,
  n   numeric,
  ns  numeric(8,2),
  f4  float4,
  f8  float8,
  b   boolean,
  d   date,
  ts  timestamp,
  tz  timestamptz,
  u   uuid,
  j   jsonb
)
"""

UTC = dt.UTC
ZONES = st.sampled_from([UTC, dt.timezone(dt.timedelta(hours=5, minutes=30)), dt.timezone(dt.timedelta(hours=-8))])
MOMENTS = st.datetimes(dt.datetime(1900, 1, 1), dt.datetime(2200, 1, 1))
AWARE = st.builds(lambda m, z: m.replace(tzinfo=z), MOMENTS, ZONES)
DAYS = st.dates(dt.date(1, 1, 1), dt.date(9999, 12, 31))
FAR = st.sampled_from(["infinity", "-infinity", "12000-06-01", "0044-03-15 BC"])
TEXTS = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=20)
DECIMALS = st.decimals(min_value=Decimal("-1e20"), max_value=Decimal("1e20"), allow_nan=False, places=6)
FLOATS = st.floats(allow_nan=True, allow_infinity=True)


def integers(bits: int) -> st.SearchStrategy[Any]:
    n = st.integers(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    return n | n.map(str) | n.map(Decimal) | n.map(lambda x: f"{x}.0") | st.integers(-10**6, 10**6).map(float)


VALUES: dict[str, st.SearchStrategy[Any]] = {
    "t": TEXTS | st.booleans() | st.integers() | DECIMALS | FLOATS | DAYS | MOMENTS | AWARE | st.uuids(),
    "v": TEXTS | st.booleans() | st.integers(-10**15, 10**15) | DAYS,
    "s": integers(16),
    "i": integers(32),
    "l": integers(64),
    "n": DECIMALS | DECIMALS.map(str) | st.integers() | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from(["NaN", "Infinity", "-Infinity", " 12.50 ", "1e3"]),
    "ns": st.decimals(min_value=-999_999, max_value=999_999, places=4) | st.integers(-999_999, 999_999)
    | st.sampled_from(["NaN", "0.005", "-0.005", "12.345"]),
    "f4": st.floats(width=32) | st.floats(-1e30, 1e30) | st.sampled_from(["NaN", "-Infinity", "0.1", "1e-40"]),
    "f8": FLOATS | FLOATS.map(repr) | DECIMALS | st.integers(-10**15, 10**15),
    "b": st.booleans() | st.sampled_from(["t", "f", "TRUE", " yes ", "no", "on", "off", "1", "0", 0, 1]),
    "d": DAYS | DAYS.map(dt.date.isoformat) | st.integers(-700_000, 2_900_000) | FAR
    | DAYS.map(lambda d: dt.datetime(d.year, d.month, d.day)) | DAYS.map(lambda d: f"{d.isoformat()}T00:00:00"),
    "ts": MOMENTS | AWARE | DAYS | MOMENTS.map(lambda m: m.isoformat(" ")) | AWARE.map(dt.datetime.isoformat)
    | st.integers(-2 * 10**15, 7 * 10**15) | FAR,
    "tz": MOMENTS | AWARE | DAYS | AWARE.map(dt.datetime.isoformat) | AWARE.map(lambda m: m.isoformat(" "))
    | st.integers(-2 * 10**15, 7 * 10**15) | FAR,
    "u": st.uuids() | st.uuids().map(str) | st.uuids().map(lambda u: u.hex.upper()),
    "j": st.recursive(st.none() | st.booleans() | st.integers(-10**9, 10**9) | TEXTS,
                      lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXTS, inner, max_size=3),
                      max_leaves=6).filter(lambda j: isinstance(j, dict | list)),
}
NAMES = list(VALUES)
OUTPUT = {"b": "CASE WHEN b THEN 't' WHEN NOT b THEN 'f' END"}
"""The type's output text, as logical decoding sends it, where a cast to text differs (bool's cast says 'true')."""


@pytest.fixture(scope="module")
async def typed(settings: Settings) -> AsyncIterator[tuple[asyncpg.Connection, dict[str, Column]]]:
    async with scratch_database(settings, "values") as dsn:
        conn = await database.connect(dsn, role="test")
        try:
            await conn.execute("SET TimeZone = 'UTC'; SET DateStyle = 'ISO'")  # as capture's sessions
            await conn.execute(TABLE)
            yield conn, (await read_tables(conn, "public", ["typed"]))["typed"].columns
        finally:
            await conn.close()


def _written(value: Any, column: Column) -> Any:
    return coerce(value, column.type_name, column.max_length, column.scale)


def _same(name: str, a: Any, b: Any) -> bool:
    if name == "j":  # jsonb keeps the document, not its text (key order, spacing)
        return json.loads(a) == json.loads(b)
    return canonical(a) == canonical(b)


@hypothesis_settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(row=st.fixed_dictionaries({name: st.none() | values for name, values in VALUES.items()}))
async def test_what_coerce_writes_is_what_postgresql_holds_and_reads_back_the_same(typed, row: dict[str, Any]):
    conn, columns = typed
    written: dict[str, Any] = {}
    for name, value in row.items():
        try:
            written[name] = _written(value, columns[name])
        except CoercionError:  # which refusals PostgreSQL shares: test_refused_values_are_refused_by_postgresql
            written[name] = None
    names = ", ".join(NAMES)
    oids = {a.name: a.type.oid for a in (await conn.prepare(f"SELECT {names} FROM typed")).get_attributes()}
    texts = ", ".join(f"{OUTPUT.get(n, n + '::text')} AS {n}_text" for n in NAMES)
    back = await conn.fetchrow(f"INSERT INTO typed ({names}) VALUES ({', '.join(f'${i}' for i in range(1, 16))}) "
                               f"RETURNING {names}, {texts}", *(written[n] for n in NAMES))
    for name in NAMES:
        if written[name] is None:
            assert back[name] is None
            continue
        assert _same(name, back[name], written[name]), (name, row[name], written[name], back[name])
        captured = converter(oids[name])(back[f"{name}_text"])  # what capture publishes for the column
        again = _written(captured, columns[name])
        assert _same(name, again, written[name]), (name, row[name], back[f"{name}_text"], captured, again)


# (value, column, what PostgreSQL is asked: the text through the type's input function, or the typed value
# assigned to the column; None where refusing is our choice, documented in cdc/values/__init__.py)
REFUSED: list[tuple[Any, str, str | None]] = [
    ("abc", "i", "text"), ("1.5", "i", "text"), ("2147483648", "i", "text"), ("40000", "s", "text"),
    (Decimal("1.5"), "i", None),  # PostgreSQL's assignment rounds a fraction: lossy, refused
    (True, "i", "assign"), (True, "f8", "assign"), (True, "n", "assign"), (True, "d", "assign"),
    ("maybe", "b", "text"), (2, "b", "assign"), ("not-a-uuid", "u", "text"), ("2024-13-45", "d", "text"),
    ("2024-01-01garbage", "d", "text"), ("12abc", "n", "text"), ("sNaN", "n", "text"),
    ("1e400", "f8", "text"), ("1e-400", "f8", "text"), ("1e39", "f4", "text"), ("1e-50", "f4", "text"),
    ("Infinity", "ns", "text"),
    ("a\x00b", "t", None),  # PostgreSQL's text cannot hold NUL (the wire protocol cannot even carry it)
    ("2024-01-01 10:00:00", "d", None),  # PostgreSQL cuts the time of day; the sync refuses to lose it
    (dt.datetime(2024, 1, 1, 10), "d", None),
]


@pytest.mark.parametrize(("value", "name", "asked"), REFUSED)
async def test_refused_values_are_refused_by_postgresql(typed, value: Any, name: str, asked: str | None):
    conn, columns = typed
    column = columns[name]
    with pytest.raises(CoercionError):
        _written(value, column)
    if asked is None:
        return
    declared = f"{column.type_name}({column.max_length})" if column.max_length else column.type_name
    if column.scale is not None:
        declared = "numeric(8,2)"
    with pytest.raises(asyncpg.PostgresError):
        async with conn.transaction():
            if asked == "text":
                await conn.fetchval(f"SELECT $1::text::{declared}", value)
            else:
                source = {bool: "bool", int: "int4"}[type(value)]
                await conn.execute(f"INSERT INTO typed ({name}) VALUES ($1::{source})", value)


async def test_lossless_assignments_postgresql_makes_are_the_same(typed):
    """Where a value of another type goes into a column, PostgreSQL's assignment and `coerce` agree."""
    conn, columns = typed
    cases = [(True, "t", "bool"), (False, "v", "bool"), (Decimal("12.50"), "t", "numeric"), (7, "t", "int4"),
             (dt.datetime(2024, 5, 6), "d", "timestamp"), (dt.date(2024, 5, 6), "ts", "date"),
             (dt.date(2024, 5, 6), "tz", "date"), (dt.datetime(2024, 5, 6, 7, 8, 9), "tz", "timestamp"),
             (12, "n", "int4"), (12, "f8", "int4"), (Decimal("12"), "i", "numeric")]
    for value, name, source in cases:
        async with conn.transaction():
            held = await conn.fetchval(f"INSERT INTO typed ({name}) VALUES ($1::{source}) RETURNING {name}", value)
        assert canonical(held) == canonical(_written(value, columns[name])), (value, name, held)
