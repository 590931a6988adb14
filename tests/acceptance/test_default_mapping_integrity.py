"""The shipped default mapping on the demo data, as the issue reproduced it: after a full sync that keeps creating,
an item (and a resource) is uncoupled and its CRM product changed. The product's number is the item's no.: the
existing ERP record is the product's match — never a key to create over."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import pytest

from cdc.settings import Settings
from tests.acceptance.orchestrator_env import OrchestratorEnv, until

pytestmark = pytest.mark.acceptance


@pytest.fixture(scope="module")
async def env(settings: Settings) -> AsyncIterator[OrchestratorEnv]:
    environment = await OrchestratorEnv(settings, "defaultmap").create()
    try:
        await environment.seed(erp=True, crm=True, customers=40)
        done = environment.cdc("full-sync", "--yes", "--keep-creating", "--json", timeout=600)
        assert done.returncode == 0, done.stderr
        environment.start("capture")
        environment.start("worker")
        await _live(environment)
        yield environment
    finally:
        await environment.drop()


async def _live(env: OrchestratorEnv) -> None:
    """Capture and the worker are running: a change made now reaches the other side."""
    probe = f"probe {uuid.uuid4().hex[:6]}"
    erp = await env.connect("erp")
    try:
        async def slot() -> bool:
            return bool(await erp.fetchval("SELECT count(*) FROM pg_replication_slots WHERE database = "
                                           "current_database() AND confirmed_flush_lsn IS NOT NULL"))

        await until(slot, what="ERP capture's replication slot")
        await erp.execute("UPDATE currency SET description = $1 WHERE code = (SELECT min(code) FROM currency)", probe)
    finally:
        await erp.close()

    async def arrived() -> bool:
        return bool(await env.value("crm", "SELECT count(*) FROM transactioncurrency WHERE currencyname = $1", probe))

    await until(arrived, timeout=120, what="a probe change through capture and the worker")


@pytest.mark.parametrize("mapping, table", [("ITEM-PRODUCT", "item"), ("RESOURCE-PRODUCT", "resource")])
async def test_an_uncoupled_record_is_matched_by_its_products_change_not_overwritten(
        env: OrchestratorEnv, mapping: str, table: str) -> None:
    pair = await env.rows("state", "SELECT erp_key, crm_key FROM cdc.couplings WHERE mapping = $1 "
                                   "ORDER BY erp_key LIMIT 1", mapping)
    erp_key, crm_key = pair[0]["erp_key"], pair[0]["crm_key"]
    done = env.cdc("uncouple", "--mapping", mapping, "--erp", erp_key)
    assert done.returncode == 0, done.stderr
    before = await env.value("erp", f"SELECT count(*) FROM {table}")
    name = f"renamed {uuid.uuid4().hex[:6]}"
    crm = await env.connect("crm")
    try:
        await crm.execute("UPDATE product SET name = $1 WHERE productid = $2", name, uuid.UUID(crm_key))
    finally:
        await crm.close()

    async def coupled_again() -> bool:
        return bool(await env.value("state", "SELECT count(*) FROM cdc.couplings WHERE mapping = $1 "
                                             "AND crm_key = $2", mapping, crm_key))

    await until(coupled_again, what=f"{mapping}: the product coupled again")
    assert await env.value("state", "SELECT erp_key FROM cdc.couplings WHERE mapping = $1 AND crm_key = $2",
                           mapping, crm_key) == erp_key
    decisions = [r["decision"] for r in await env.rows(
        "state", "SELECT decision FROM cdc.record_log WHERE mapping = $1 AND system = 'crm' AND key = $2 "
                 "AND at > now() - interval '5 minutes' ORDER BY id", mapping, crm_key)]
    assert decisions[-1] == "coupled" and "created" not in decisions, decisions
    assert await env.value("erp", f"SELECT count(*) FROM {table}") == before
    jobs = json.loads(env.cdc("jobs", "--json", "--limit", "100").stdout)
    assert not any(j["mapping"] == mapping and j["kind"] == "live" and j["inserted"] for j in jobs)
