"""Matching by value: a match field whose destination column is not text compares values of the column's type, and
every candidate is confirmed by the rule `cdc verify` applies (`consumers.decisions.matching`). Before, the worker
compared PostgreSQL's text of the column with the canonical text — `1.50` (numeric(10,2)) never met `1.5`, nor
`2024-03-01 08:00:00+00` the ISO text — so a full sync created a duplicate of a record it should have coupled, while
`cdc verify` called the two a match."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from cdc.settings import Settings
from tests.integration.sync_harness import LiveSync

pytestmark = pytest.mark.asyncio(loop_scope="session")

ERP = """
CREATE TABLE IF NOT EXISTS tariff (
  no          varchar(20)  PRIMARY KEY,
  name        text         NOT NULL DEFAULT '',
  amount      numeric      NOT NULL,
  valid_from  timestamptz  NOT NULL,
  modified_at timestamptz  NOT NULL DEFAULT clock_timestamp()
);
"""
CRM = """
CREATE TABLE IF NOT EXISTS tariff (
  tariffid    uuid          PRIMARY KEY DEFAULT gen_random_uuid(),
  name        text          NOT NULL DEFAULT '',
  amount      numeric(10,2) NOT NULL,
  validfrom   timestamptz   NOT NULL,
  modifiedon  timestamptz   NOT NULL DEFAULT clock_timestamp()
);
"""
MAPPING = {"version": 1, "mappings": [{
    "name": "TARIFF", "direction": "to_crm", "sync_only_coupled": False,
    "erp": {"table": "tariff", "key": "no", "modified_on": "modified_at"},
    "crm": {"table": "tariff", "key": "tariffid", "modified_on": "modifiedon"},
    "match_on": [{"erp": "amount", "crm": "amount", "priority": 1},
                 {"erp": "valid_from", "crm": "validfrom", "priority": 1},
                 {"erp": "name", "crm": "name", "priority": 1}],
    "fields": [{"erp": "name", "crm": "name"}, {"erp": "amount", "crm": "amount"},
               {"erp": "valid_from", "crm": "validfrom"}],
}]}
MARCH = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
async def live(settings: Settings, tmp_path: Path):
    path = tmp_path / f"tariffs-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(yaml.safe_dump(MAPPING))
    async with LiveSync(settings, path, {"erp": ERP, "crm": CRM}) as sync:
        yield sync


async def test_numbers_and_times_match_by_value_and_the_rule_is_verifys(live: LiveSync) -> None:
    # a numeric(10,2) 1.50 and a timestamptz are the ERP's 1.5 and its instant: one record each side, coupled
    await live.erp.execute("INSERT INTO tariff(no, name, amount, valid_from) VALUES ('T1', 'Standard', 1.5, $1)",
                           MARCH)
    standard = uuid.uuid4()
    await live.crm.execute("INSERT INTO tariff(tariffid, name, amount, validfrom) VALUES ($1, 'STANDARD', 1.50, $2)",
                           standard, MARCH)
    # PostgreSQL's lower() folds 'İ' to 'i', Python's to 'i' and a combining dot: not the same name by the match rule
    # (cdc verify's), so the worker does not couple what verify would not call a match
    await live.erp.execute("INSERT INTO tariff(no, name, amount, valid_from) VALUES ('T2', 'İZMİR', 2, $1)", MARCH)
    await live.crm.execute("INSERT INTO tariff(name, amount, validfrom) VALUES ('izmir', 2, $1)", MARCH)
    await live.start()

    done = await live.cdc("full-sync", "--yes", "--json", timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert await live.state.fetchval("SELECT crm_key FROM cdc.couplings WHERE erp_key = 'T1'") == str(standard)
    assert await live.crm.fetchval("SELECT count(*) FROM tariff WHERE amount = 1.5") == 1
    assert await live.crm.fetchval("SELECT amount FROM tariff WHERE tariffid = $1", standard) == Decimal("1.50")
    # İZMİR was created, not coupled to 'izmir'
    assert await live.crm.fetchval("SELECT count(*) FROM tariff WHERE amount = 2") == 2
    verify = await live.cdc("verify", "--json", timeout=120)
    assert verify.returncode == 0, verify.stdout + verify.stderr
