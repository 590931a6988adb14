"""Issue #19, item 5: a value the sync cannot type is a per-record failure for the real sync and must be a
predicted failure for the dry run — not the end of the command; and whatever the source holds (NaN numerics, which
the sync carries since dates and numbers round-trip exactly), the dry run predicts what the real run then does."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from cdc.catalog import Column, Table
from cdc.mapping.load import default_mapping_file
from cdc.orchestrator.dry_run import Prediction, changes_of
from cdc.orchestrator.sources import SideRows
from cdc.settings import Settings
from tests.acceptance.orchestrator_env import OrchestratorEnv, counters, jobs_by


def test_a_row_the_sync_cannot_type_is_a_predicted_failure() -> None:
    mapping = default_mapping_file().get("CURRENCY")
    table = Table("currency", "public", {"code": Column("code", "varchar"), "exchange_rate": Column(
        "exchange_rate", "int4")}, ["code"])  # as a catalog read before a column changed type
    prediction = Prediction("CURRENCY", "to_crm")
    changes = changes_of(SideRows(mapping, "erp", table), [{"code": "EUR", "exchange_rate": 1},
                                                          {"code": "XBT", "exchange_rate": "1.5"}], prediction)
    assert [c.key for c in changes] == ["EUR"]
    assert prediction.failed == 1
    assert prediction.failures == [{"key": "XBT", "error": "erp.currency XBT: '1.5' is not an integer"}]


@pytest.fixture(scope="module")
async def env(settings: Settings) -> AsyncIterator[OrchestratorEnv]:
    environment = await OrchestratorEnv(settings, "nan").create()
    try:
        await environment.seed(erp=True, crm=False, customers=10)
        yield environment
    finally:
        await environment.drop()


@pytest.mark.asyncio(loop_scope="session")
async def test_a_nan_numeric_is_predicted_as_the_sync_then_handles_it(env: OrchestratorEnv) -> None:
    item = await env.value("erp", "SELECT min(no) FROM item WHERE NOT blocked")
    conn = await env.connect("erp")
    try:
        await conn.execute("UPDATE item SET unit_price = 'NaN' WHERE no = $1", item)
    finally:
        await conn.close()
    dry = env.cdc("full-sync", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    predicted = {(p["mapping"], p["direction"]): p for p in json.loads(dry.stdout)["predictions"]}
    items = predicted[("ITEM-PRODUCT", "to_crm")]

    run = env.cdc_json("full-sync", "--yes", "--restore")
    done = counters(jobs_by(env.cdc_json("jobs", "--limit", "200"), kind="full", run_id=run["run_id"])[
        ("ITEM-PRODUCT", "to_crm")])
    assert (items["created"], items["failed"]) == (done.get("inserted", 0), done.get("failed", 0)), (items, done)
    assert all(f["key"] != item for f in items["failures"])
