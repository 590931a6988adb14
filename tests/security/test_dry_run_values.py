"""Issue #19, item 5: a value the sync cannot carry (a NaN numeric) is a per-record error for the real sync and
must be a predicted failure for the dry run — not the end of the command."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from cdc.settings import Settings
from tests.acceptance.orchestrator_env import OrchestratorEnv

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture(scope="module")
async def env(settings: Settings) -> AsyncIterator[OrchestratorEnv]:
    environment = await OrchestratorEnv(settings, "nan").create()
    try:
        await environment.seed(erp=True, crm=False, customers=10)
        yield environment
    finally:
        await environment.drop()


async def test_a_nan_numeric_is_a_predicted_failure(env: OrchestratorEnv) -> None:
    item = await env.value("erp", "SELECT min(no) FROM item WHERE NOT blocked")
    conn = await env.connect("erp")
    try:
        await conn.execute("UPDATE item SET unit_price = 'NaN' WHERE no = $1", item)
    finally:
        await conn.close()
    done = env.cdc("full-sync", "--dry-run", "--json")
    assert done.returncode == 0, done.stderr
    predictions = {(p["mapping"], p["direction"]): p for p in json.loads(done.stdout)["predictions"]}
    items = predictions[("ITEM-PRODUCT", "to_crm")]
    assert items["failed"] >= 1
    assert {"key": item, "error": f"erp.item {item}: Decimal('NaN') is not a finite number"} in items["failures"]
    shown = env.cdc("full-sync", "--dry-run")
    assert shown.returncode == 0 and f"ITEM-PRODUCT to_crm {item}: erp.item {item}" in shown.stdout, shown.stderr
