"""A hierarchy over a composite key (issue #14.6): storage bins keyed by location and code, each naming its parent
bin by two columns in the ERP and by one uuid in the CRM. One full sync couples the whole tree, parents first, in
both directions; live, a parent and its child created in one transaction arrive together."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import yaml

from cdc.settings import Settings
from tests.integration.sync_harness import LiveSync

pytestmark = pytest.mark.asyncio(loop_scope="session")

ERP = """
CREATE TABLE IF NOT EXISTS bin (
  location        varchar(10)  NOT NULL,
  code            varchar(20)  NOT NULL,
  name            varchar(50)  NOT NULL DEFAULT '',
  parent_location varchar(10),
  parent_code     varchar(20),
  modified_at     timestamptz  NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (location, code),
  FOREIGN KEY (parent_location, parent_code) REFERENCES bin (location, code)
);
"""
CRM = """
CREATE TABLE IF NOT EXISTS bin (
  binid       uuid         PRIMARY KEY DEFAULT gen_random_uuid(),
  location    varchar(10)  NOT NULL DEFAULT '',
  code        varchar(20)  NOT NULL DEFAULT '',
  name        varchar(50)  NOT NULL DEFAULT '',
  parentbinid uuid         REFERENCES bin (binid),
  modifiedon  timestamptz  NOT NULL DEFAULT clock_timestamp()
);
"""
MAPPING = {"version": 1, "mappings": [{
    "name": "BIN", "direction": "both", "sync_only_coupled": False, "conflict": "erp-wins",
    "erp": {"table": "bin", "key": ["location", "code"], "modified_on": "modified_at",
            "new_key": {"strategy": "columns"}},
    "crm": {"table": "bin", "key": "binid", "modified_on": "modifiedon"},
    "match_on": [{"erp": "code", "crm": "code", "priority": 1, "case_sensitive": True}],
    "fields": [{"erp": "location", "crm": "location"}, {"erp": "code", "crm": "code"},
               {"erp": "name", "crm": "name"},
               {"erp": ["parent_location", "parent_code"], "crm": "parentbinid", "lookup": "BIN"}],
}]}
# a tree four levels deep whose parents sort after their children by key (ROOT last): only depth orders it
ERP_TREE = [("W1", "ROOT", None, None), ("W1", "A", "W1", "ROOT"), ("W1", "A-1", "W1", "A"),
            ("W1", "B", "W1", "ROOT"), ("W1", "B-1", "W1", "B"), ("W1", "B-1-x", "W1", "B-1")]


@pytest.fixture
async def live(settings: Settings, tmp_path: Path):
    path = tmp_path / f"bins-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(yaml.safe_dump(MAPPING))
    # batches of two records: the tree spans batches, so only the replay's depth order couples it in one run
    small = Settings(**{**settings.model_dump(), "worker_batch_size": 2})
    async with LiveSync(small, path, {"erp": ERP, "crm": CRM}) as sync:
        yield sync


async def _crm_parents(live: LiveSync) -> dict[str, str | None]:
    rows = await live.crm.fetch("SELECT c.code, p.code AS parent FROM bin c LEFT JOIN bin p ON p.binid = c.parentbinid")
    return {r["code"]: r["parent"] for r in rows}


async def _erp_parents(live: LiveSync) -> dict[str, str | None]:
    rows = await live.erp.fetch("SELECT code, parent_code FROM bin")
    return {r["code"]: r["parent_code"] for r in rows}


async def test_one_full_sync_couples_a_composite_keyed_tree_both_ways(live: LiveSync) -> None:
    async with live.erp.transaction():
        for location, code, parent_location, parent_code in ERP_TREE:
            await live.erp.execute("INSERT INTO bin(location, code, name, parent_location, parent_code) "
                                   "VALUES ($1, $2, $2, $3, $4)", location, code, parent_location, parent_code)
    crm_root, crm_child = uuid.uuid4(), uuid.uuid4()
    await live.crm.execute("INSERT INTO bin(binid, location, code, name) VALUES ($1, 'W2', 'TOP', 'top')", crm_root)
    await live.crm.execute("INSERT INTO bin(binid, location, code, name, parentbinid) "
                           "VALUES ($1, 'W2', 'TOP-1', 'top-1', $2)", crm_child, crm_root)
    await live.start()

    done = await live.cdc("full-sync", "--yes", "--json", timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    expected = {code: parent_code for _, code, _, parent_code in ERP_TREE}
    assert {k: v for k, v in (await _crm_parents(live)).items() if k in expected} == expected
    assert (await _erp_parents(live))["TOP-1"] == "TOP"
    assert await live.erp.fetchval("SELECT parent_location FROM bin WHERE code = 'TOP-1'") == "W2"
    assert await live.state.fetchval("SELECT count(*) FROM cdc.couplings WHERE mapping = 'BIN'") == len(ERP_TREE) + 2
    assert await live.state.fetchval("SELECT count(*) FROM cdc.job_errors WHERE state = 'open'") == 0
    failed = await live.state.fetch("SELECT key, detail FROM cdc.record_log WHERE decision = 'failed'")
    assert failed == [], f"not parents first: {[dict(r) for r in failed]}"

    # live: a parent and its child created in one ERP transaction
    async with live.erp.transaction():
        await live.erp.execute("INSERT INTO bin(location, code, name, parent_location, parent_code) "
                               "VALUES ('W1', 'C', 'C', 'W1', 'ROOT')")
        await live.erp.execute("INSERT INTO bin(location, code, name, parent_location, parent_code) "
                               "VALUES ('W1', 'C-1', 'C-1', 'W1', 'C')")

    async def arrived() -> bool:
        parents = await _crm_parents(live)
        return parents.get("C") == "ROOT" and parents.get("C-1") == "C"

    await live.until(arrived, timeout=30, what="a parent and its child created together")
