"""like / not_like / ilike / not_ilike mean what PostgreSQL's LIKE and ILIKE mean: random patterns (wildcards,
escapes, a custom or no escape character, letters of either case inside and outside ASCII, newlines) over random
text give the same answer in the filter's Python evaluation, in its generated SQL, and in PostgreSQL evaluating
the pattern as written (`value COLLATE "C" LIKE pattern ESCAPE escape`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from hypothesis import assume, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from cdc.mapping.filters import matches, to_sql
from cdc.mapping.model import Condition
from cdc.mapping.patterns import PatternError, check
from cdc.settings import Settings
from tests.integration.mapping_fixtures import scratch_database

ALPHABET = "aAzZkKéÉßİi_%\\!x \n🙂"
TEXT = st.text(alphabet=ALPHABET, max_size=6)
ESCAPES = st.sampled_from(["\\", "!", "", "_", "%", "a"])
OPS = st.sampled_from(["like", "not_like", "ilike", "not_ilike"])
SQL = {"like": "LIKE", "not_like": "NOT LIKE", "ilike": "ILIKE", "not_ilike": "NOT ILIKE"}


@pytest.fixture(scope="module")
async def pg(settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    async with scratch_database(settings, "patterns") as dsn:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("CREATE TABLE sample (id integer PRIMARY KEY, t text)")
            yield conn
        finally:
            await conn.close()


def valid(pattern: str, escape: str) -> bool:
    try:
        check(pattern, escape)
    except PatternError:
        return False
    return True


@hypothesis_settings(max_examples=400, deadline=None)
@given(texts=st.lists(st.none() | TEXT, min_size=1, max_size=6), pattern=TEXT, escape=ESCAPES, op=OPS)
@example(texts=["É", "é", "K", "k"], pattern="é", escape="\\", op="ilike")
@example(texts=["a_", "ab"], pattern="a__", escape="_", op="like")
@example(texts=["a%", "ab"], pattern="a!%", escape="!", op="like")
@example(texts=["a\\b", "ab"], pattern="a\\b", escape="", op="like")
@example(texts=["a\nb"], pattern="a_b", escape="\\", op="like")
@example(texts=[None, "x"], pattern="%", escape="\\", op="not_like")
async def test_python_sql_and_postgresql_agree_on_every_pattern(pg: asyncpg.Connection, texts: list[str | None],
                                                                pattern: str, escape: str, op: str) -> None:
    assume(valid(pattern, escape))
    condition = Condition(field="t", op=op, value=pattern, escape=escape)  # type: ignore[arg-type]
    await pg.execute("TRUNCATE sample")
    await pg.executemany("INSERT INTO sample (id, t) VALUES ($1, $2)", list(enumerate(texts)))
    rows = await pg.fetch("SELECT id, t FROM sample")
    in_python = {r["id"] for r in rows if matches(condition, dict(r))}
    where, params = to_sql(condition, {"id": "int4", "t": "text"})
    in_sql = {r["id"] for r in await pg.fetch(f"SELECT id FROM sample WHERE {where}", *params)}
    # PostgreSQL itself, the pattern as the user wrote it; NULL is outside like and inside not_like
    as_written = {r["id"] for r in await pg.fetch(
        f'SELECT id FROM sample WHERE t COLLATE "C" {SQL[op]} $1 ESCAPE $2 '
        f"OR (t IS NULL AND {op.startswith('not_')})", pattern, escape)}
    assert in_python == in_sql == as_written, (texts, pattern, escape, op)


async def test_a_pattern_ending_in_its_escape_is_refused_before_postgresql_sees_it(pg: asyncpg.Connection) -> None:
    with pytest.raises(ValueError, match="ends with its escape character"):
        Condition(field="t", op="like", value="50\\")
    # what PostgreSQL does with it depends on the data: an error here, false elsewhere
    with pytest.raises(asyncpg.InvalidEscapeSequenceError):
        await pg.fetchval("SELECT 'a\\' LIKE 'a\\'")
    assert await pg.fetchval("SELECT 'a' LIKE 'a\\'") is False
