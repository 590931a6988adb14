"""Issue #19, item 11: a value PostgreSQL itself accepted is never a dead letter. NaN and ±Infinity in float
columns, NaN in numeric ones, ±infinity and years beyond 9999 in dates and timestamps are carried to a column
that can hold them; where the destination cannot (an infinite number into numeric(p,s)), the record fails with
one error naming the value and the column, and nothing is dead-lettered. Through real capture and the worker."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import yaml

from cdc.settings import Settings
from tests.integration.sync_harness import LiveSync

pytestmark = pytest.mark.asyncio(loop_scope="session")

ERP = """
CREATE TABLE IF NOT EXISTS reading (
  no          varchar(20) PRIMARY KEY,
  value       double precision,
  ratio       real,
  amount      numeric,
  taken_on    date,
  taken_at    timestamptz,
  modified_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
"""
CRM = """
CREATE TABLE IF NOT EXISTS reading (
  readingid   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  number      varchar(20) NOT NULL DEFAULT '',
  value       double precision,
  ratio       real,
  amount      numeric(18,2),
  taken_on    date,
  taken_at    timestamptz,
  modifiedon  timestamptz NOT NULL DEFAULT clock_timestamp()
);
"""
MAPPING = {"version": 1, "mappings": [{
    "name": "READING", "direction": "to_crm", "sync_only_coupled": False, "conflict": "erp-wins",
    "erp": {"table": "reading", "key": "no", "modified_on": "modified_at"},
    "crm": {"table": "reading", "key": "readingid", "modified_on": "modifiedon"},
    "fields": [{"erp": "no", "crm": "number"}, {"erp": "value", "crm": "value"}, {"erp": "ratio", "crm": "ratio"},
               {"erp": "amount", "crm": "amount"}, {"erp": "taken_on", "crm": "taken_on"},
               {"erp": "taken_at", "crm": "taken_at"}],
}]}
COLUMNS = "value::text, ratio::text, amount::text, taken_on::text, taken_at::text"


@pytest.fixture
async def live(settings: Settings, tmp_path: Path):
    path = tmp_path / f"readings-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(yaml.safe_dump(MAPPING))
    async with LiveSync(settings, path, {"erp": ERP, "crm": CRM}) as sync:
        await sync.start()
        await sync.erp.execute("SET TIME ZONE 'UTC'")
        await sync.crm.execute("SET TIME ZONE 'UTC'")
        yield sync


async def _arrived(live: LiveSync, no: str) -> tuple | None:
    row = await live.crm.fetchrow(f"SELECT {COLUMNS} FROM reading WHERE number = $1", no)
    return None if row is None else tuple(row)


async def test_values_postgresql_accepts_arrive_exactly_and_none_is_a_dead_letter(live: LiveSync) -> None:
    rows = {
        "R-NAN": ("NaN", "NaN", "NaN", "infinity", "infinity"),
        "R-INF": ("Infinity", "-Infinity", "1.5", "-infinity", "-infinity"),
        "R-FAR": ("-Infinity", "Infinity", "0", "12000-06-01", "12000-06-01 12:00:00+00"),
        "R-BC": ("1e308", "3.4e38", "-0.5", "0044-03-15 BC", "0044-03-15 12:00:00+00 BC"),
    }
    for no, (value, ratio, amount, on, at) in rows.items():
        await live.erp.execute("INSERT INTO reading(no, value, ratio, amount, taken_on, taken_at) "
                               "VALUES ($1, $2::text::float8, $3::text::float4, $4::text::numeric, $5::text::date, "
                               "$6::text::timestamptz)", no, value, ratio, amount, on, at)
    for no in rows:
        held = await live.until(lambda no=no: _arrived(live, no), timeout=30, what=f"{no} in the CRM")
        expected = await live.erp.fetchrow(f"SELECT {COLUMNS} FROM reading WHERE no = $1", no)
        assert held[:2] == tuple(expected)[:2] and held[3:] == tuple(expected)[3:], (no, held, tuple(expected))
        assert held[2] in ("NaN", f"{float(tuple(expected)[2]):.2f}"), (no, held[2])  # numeric(18,2): rounded
    errors = await live.state.fetch("SELECT source_key AS key, message FROM cdc.job_errors")
    assert errors == [], [dict(e) for e in errors]  # a dead letter is an error too ("dead letter: …")


async def test_an_infinite_number_the_destination_cannot_hold_fails_its_record_naming_value_and_column(
        live: LiveSync) -> None:
    await live.erp.execute("INSERT INTO reading(no, amount) VALUES ('R-HUGE', 'Infinity')")
    error = await live.until(lambda: live.state.fetchrow("SELECT source_key AS key, message FROM cdc.job_errors "
                                                         "WHERE mapping = 'READING'"), timeout=30,
                             what="the record's error")
    assert error["key"] == "R-HUGE"
    assert "Infinity" in error["message"] and "amount" in error["message"], error["message"]
    assert await live.state.fetchval("SELECT count(*) FROM cdc.job_errors WHERE message LIKE 'dead letter%'") == 0
    await live.erp.execute("UPDATE reading SET amount = 7 WHERE no = 'R-HUGE'")
    assert await live.until(lambda: _arrived(live, "R-HUGE"), timeout=30, what="R-HUGE once it can be held")
