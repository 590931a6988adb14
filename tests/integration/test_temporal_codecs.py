"""The exact date and timestamp codecs against PostgreSQL itself: what we write is what PostgreSQL holds, and what
it holds reads back to the same count — the finite extremes and the infinities alike."""

from __future__ import annotations

import random

import asyncpg
import pytest

from cdc import database
from cdc.settings import Settings
from cdc.temporal import moment, parse, ticks_of

TEXTS = ["infinity", "-infinity", "0001-01-01", "9999-12-31", "10000-01-01", "0044-03-15 BC", "4713-01-01 BC",
         "2024-02-29"]


@pytest.fixture(scope="module")
async def conn(settings: Settings):
    connection = await database.connect(settings.local_dsn("postgres"), role="postgres")
    await connection.execute("SET TimeZone = 'UTC'")
    yield connection
    await connection.close()


@pytest.mark.parametrize("text", TEXTS)
async def test_postgresql_values_read_and_write_back_exactly(conn: asyncpg.Connection, text: str) -> None:
    for kind in ("date", "timestamp", "timestamptz"):
        value = await conn.fetchval(f"SELECT $1::text::{kind}", text)
        assert await conn.fetchval(f"SELECT $1::{kind}::text = $2::text::{kind}::text", value, text), (kind, text)
        assert value == parse(kind, await conn.fetchval(f"SELECT $1::text::{kind}::text", text))  # type: ignore


async def test_random_moments_agree_with_postgresql(conn: asyncpg.Connection) -> None:
    rng = random.Random(20261203)
    for _ in range(300):
        days, micros = rng.randint(-2_451_545, 2_900_000), rng.randint(0, 86_399_999_999)
        ticks = days * 86_400_000_000 + micros
        text = await conn.fetchval("SELECT (timestamp '2000-01-01' + make_interval(days => $1) "
                                   "+ make_interval(secs => $2::numeric / 1000000))::text", days, micros)
        assert ticks_of("timestamp", parse("timestamp", text)) == ticks, text
        assert ticks_of("timestamp", await conn.fetchval("SELECT $1::text::timestamp", text)) == ticks, text
        day_text = await conn.fetchval("SELECT (date '2000-01-01' + $1::int)::text", days)
        assert ticks_of("date", parse("date", day_text)) == days, day_text
        assert await conn.fetchval("SELECT $1::date::text", moment("date", days)) == day_text
