"""The filter language means the same in Python and in PostgreSQL: random filters over random rows of a small
typed table select the same rows either way. Column `v` carries a linguistic collation (where 'a' < 'B') when
the server has ICU, so text ordering must come from the filter's own COLLATE "C"."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from cdc.catalog import read_tables
from cdc.mapping.filters import matches, to_sql
from cdc.mapping.model import AllOf, AnyOf, Condition, Filter, Not
from cdc.settings import Settings
from tests.integration.mapping_fixtures import scratch_database

SAMPLE = """
CREATE TABLE sample (
  id  integer PRIMARY KEY,
  t   text,
  v   varchar(8) {linguistic},
  i   integer,
  n   numeric(8,2),
  b   boolean,
  d   date,
  ts  timestamptz,
  u   uuid
)
"""

TEXT = st.text(alphabet="aAbBzZ é_%'\\\"ß🙂", max_size=4)
UUIDS = [uuid.UUID(int=n) for n in (1, 2**64, 2**127)]
VALUES: dict[str, st.SearchStrategy[Any]] = {
    "t": TEXT,
    "v": TEXT,
    "i": st.integers(-3, 3),
    "n": st.decimals(min_value=-2, max_value=2, places=2),
    "b": st.booleans(),
    "d": st.dates(date(2024, 2, 27), date(2024, 3, 2)),
    "ts": st.sampled_from([datetime(2024, 1, 1, h, tzinfo=UTC) for h in (0, 11, 12, 23)]),
    "u": st.sampled_from(UUIDS),
}
SPELLINGS: dict[str, st.SearchStrategy[Any]] = {
    "t": st.integers(-3, 3),
    "v": st.integers(-3, 3),
    "i": st.integers(-3, 3).map(str),
    "n": st.decimals(min_value=-2, max_value=2, places=2).map(str) | st.integers(-2, 2)
    | st.sampled_from([0.5, -1.25]),
    "b": st.sampled_from(["true", "false", "yes", "no", "t", "f", 0, 1]),
    "d": st.dates(date(2024, 2, 27), date(2024, 3, 2)).map(date.isoformat),
    "ts": st.sampled_from(["2024-01-01T12:00:00", "2024-01-01 11:00:00+00:00", "2024-01-01T13:00:00+01:00",
                           "2024-01-01"]),
    "u": st.sampled_from([str(u) for u in UUIDS]),
}
COLUMNS = list(VALUES)
TEXT_COLUMNS = ("t", "v")
OPS = ["eq", "ne", "lt", "le", "gt", "ge", "in", "not_in", "is_null", "not_null"]
LIKE_OPS = ["like", "not_like", "ilike", "not_ilike"]
TEXT_OPS = ["starts_with", "contains", *LIKE_OPS]
PATTERNS = st.text(alphabet="aAbB%_é", max_size=4)


def filter_value(column: str) -> st.SearchStrategy[Any]:
    return VALUES[column] | SPELLINGS[column]


@st.composite
def conditions(draw: st.DrawFn) -> Condition:
    column = draw(st.sampled_from(COLUMNS))
    op = draw(st.sampled_from(OPS + (TEXT_OPS if column in TEXT_COLUMNS else [])))
    if op in ("is_null", "not_null"):
        return Condition(field=column, op=op)
    if op in LIKE_OPS:  # patterns of every kind: tests/integration/test_filter_patterns.py
        return Condition(field=column, op=op, value=draw(PATTERNS))
    if op in ("in", "not_in"):
        values = draw(st.lists(filter_value(column), min_size=1, max_size=3))
        return Condition(field=column, op=op, value=values)
    return Condition(field=column, op=op, value=draw(filter_value(column)))


FILTERS: st.SearchStrategy[Filter] = st.recursive(
    conditions(),
    lambda children: st.one_of(
        st.lists(children, min_size=1, max_size=3).map(lambda items: AllOf(all=items)),
        st.lists(children, min_size=1, max_size=3).map(lambda items: AnyOf(any=items)),
        children.map(lambda inner: Not.model_validate({"not": inner})),
    ),
    max_leaves=6,
)

ROWS = st.lists(st.fixed_dictionaries({column: st.none() | values for column, values in VALUES.items()}),
                max_size=8)


@pytest.fixture(scope="module")
async def sample(settings: Settings) -> AsyncIterator[tuple[asyncpg.Connection, dict[str, str]]]:
    async with scratch_database(settings, "filters") as dsn:
        conn = await asyncpg.connect(dsn)
        try:
            icu = await conn.fetchval("SELECT count(*) FROM pg_collation WHERE collname = 'en-x-icu'")
            await conn.execute(SAMPLE.format(linguistic='COLLATE "en-x-icu"' if icu else ""))
            table = (await read_tables(conn, "public", ["sample"]))["sample"]
            yield conn, {name: column.type_name for name, column in table.columns.items()}
        finally:
            await conn.close()


async def load(conn: asyncpg.Connection, rows: list[dict[str, Any]]) -> list[asyncpg.Record]:
    await conn.execute("TRUNCATE sample")
    await conn.executemany("INSERT INTO sample (id, t, v, i, n, b, d, ts, u) "
                           "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                           [(n, *(row[c] for c in COLUMNS)) for n, row in enumerate(rows)])
    return await conn.fetch("SELECT * FROM sample")


async def selected(conn: asyncpg.Connection, flt: Filter | None, types: dict[str, str]) -> set[int]:
    where, params = to_sql(flt, types)
    return {r["id"] for r in await conn.fetch(f"SELECT id FROM sample WHERE {where}", *params)}


@hypothesis_settings(max_examples=150, deadline=None)
@given(rows=ROWS, flt=FILTERS)
async def test_python_and_postgresql_select_the_same_rows(sample, rows: list[dict[str, Any]], flt: Filter):
    conn, types = sample
    stored = await load(conn, rows)
    in_python = {r["id"] for r in stored if matches(flt, dict(r))}
    assert in_python == await selected(conn, flt, types), (flt, [dict(r) for r in stored])


@pytest.mark.parametrize("text", ["O'Brien", "x'); DROP TABLE sample; --", 'say "hi"', "back\\slash",
                                  "100%_off", "$1"])
async def test_filter_values_with_quotes_travel_as_parameters(sample, text: str):
    conn, types = sample
    await load(conn, [{**dict.fromkeys(COLUMNS), "t": text}, {**dict.fromkeys(COLUMNS), "t": text + "!"}])
    assert await selected(conn, Condition(field="t", op="eq", value=text), types) == {0}
    assert await selected(conn, Condition(field="t", op="starts_with", value=text), types) == {0, 1}
    assert await selected(conn, Condition(field="t", op="in", value=[text, "other"]), types) == {0}
    assert await conn.fetchval("SELECT count(*) FROM sample") == 2


@pytest.mark.parametrize("column", TEXT_COLUMNS)
async def test_the_c_collation_orders_like_python(sample, column: str):
    conn, types = sample
    words = ["a", "B", "b", "Z", "é", "ß", "🙂", "", "aa"]
    await load(conn, [{**dict.fromkeys(COLUMNS), column: w} for w in words])
    for pivot in words:
        expected = {n for n, w in enumerate(words) if w < pivot}
        assert await selected(conn, Condition(field=column, op="lt", value=pivot), types) == expected


async def test_numbers_and_booleans_compare_as_numbers_and_booleans(sample):
    conn, types = sample
    empty = dict.fromkeys(COLUMNS)
    await load(conn, [{**empty, "i": i, "n": Decimal(i) / 4, "b": i > 0} for i in (-10, 2, 9)])
    assert await selected(conn, Condition(field="i", op="lt", value="3"), types) == {0, 1}
    assert await selected(conn, Condition(field="n", op="ge", value=0.5), types) == {1, 2}
    assert await selected(conn, Condition(field="b", op="eq", value="yes"), types) == {1, 2}
