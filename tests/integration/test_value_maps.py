"""Issue #13, item 5: on a schema pair that is not the demo's, what `cdc mappings validate` accepts syncs. A value
map keyed 'false'/'true' on a boolean column (and '0'/'5.5' on a numeric one) passed validation and then failed
every record ("value False is not in the value map"); now both directions carry every record. Real stack, real
capture, a worker in this process."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cdc.settings import Settings
from tests.integration.sync_harness import LiveSync

pytestmark = pytest.mark.asyncio(loop_scope="session")

ERP = """
CREATE TABLE member (no varchar(20) PRIMARY KEY, name varchar(50) NOT NULL DEFAULT '',
                     active boolean NOT NULL DEFAULT true, discount numeric(5,2) NOT NULL DEFAULT 0,
                     modified_at timestamptz NOT NULL DEFAULT clock_timestamp());
"""
CRM = """
CREATE TABLE membercard (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), number varchar(20) NOT NULL DEFAULT '',
                         name varchar(50) NOT NULL DEFAULT '', status varchar(1), tier integer,
                         modifiedon timestamptz NOT NULL DEFAULT clock_timestamp());
"""
MAPPINGS = """
version: 1
mappings:
  - name: MEMBERS
    direction: both
    sync_only_coupled: false
    conflict: erp-wins
    erp: {table: member, key: 'no', modified_on: modified_at, new_key: {strategy: code, prefix: M, length: 10}}
    crm: {table: membercard, key: id, modified_on: modifiedon}
    fields:
      - {erp: 'no', crm: number, direction: to_crm}
      - {erp: name, crm: name}
      - {erp: active, crm: status, value_map: {'false': 'N', 'true': 'Y'}}
      - {erp: discount, crm: tier, value_map: {'0': 1, '5.5': 2, '10': 3}}
"""


@pytest.fixture(scope="module")
async def live(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LiveSync]:
    path: Path = tmp_path_factory.mktemp("value-maps") / "mappings.yaml"
    path.write_text(MAPPINGS)
    async with LiveSync(settings, path, schemas={"erp": ERP, "crm": CRM}) as sync:
        yield sync


async def test_validate_accepts_the_file_and_every_record_syncs_both_ways(live: LiveSync) -> None:
    checked = await live.cdc("mappings", "validate")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    await live.start()
    await live.erp.execute("INSERT INTO member(no, name, active, discount) VALUES ('M1', 'Ann', true, 0), "
                           "('M2', 'Bo', false, 5.50), ('M3', 'Cy', true, 10)")
    cards = {}
    for no, status, tier in (("M1", "Y", 1), ("M2", "N", 2), ("M3", "Y", 3)):
        coupling = await live.until(lambda no=no: live.coupling("MEMBERS", "erp", no), what=f"{no} coupled")
        cards[no] = uuid.UUID(coupling["crm_key"])
        row = await live.crm.fetchrow("SELECT status, tier FROM membercard WHERE id = $1", cards[no])
        assert (row["status"], row["tier"]) == (status, tier)
    await live.crm.execute("UPDATE membercard SET status = 'N', tier = 3 WHERE id = $1", cards["M1"])
    await live.until(lambda: live.erp.fetchval("SELECT NOT active AND discount = 10 FROM member WHERE no = 'M1'"),
                     what="the CRM's status and tier in the ERP")
    assert await live.state.fetchval("SELECT count(*) FROM cdc.job_errors") == 0
    assert await live.state.fetchval("SELECT coalesce(sum(failed), 0) FROM cdc.jobs") == 0


async def test_a_value_the_map_does_not_list_fails_that_record_only(live: LiveSync) -> None:
    await live.erp.execute("INSERT INTO member(no, name, discount) VALUES ('M7', 'Odd', 7)")
    await live.erp.execute("INSERT INTO member(no, name) VALUES ('M8', 'Even')")
    await live.until(lambda: live.coupling("MEMBERS", "erp", "M8"), what="the next record synced")
    error = await live.until(lambda: live.state.fetchval(
        "SELECT message FROM cdc.job_errors WHERE source_key = 'M7' AND state = 'open'"), what="M7's error")
    assert error == "field discount <-> tier: value 7.00 is not in the value map (towards crm)"
    assert live.worker is not None and live.worker_task is not None and not live.worker_task.done()
