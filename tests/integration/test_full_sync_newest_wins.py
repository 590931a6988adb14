"""A replay never overwrites a newer change: records updated on both sides while a full sync runs end with the
newest values, and verify finds both systems equal.

Real pipeline: `cdc capture` and `cdc worker` run as subprocesses (the full sync finds the worker in the
consumer group and does not start its own); the full sync replays snapshot rows while the test keeps updating
customers in the ERP, accounts in the CRM, and some records on both sides (the CRM last: CUSTOMER resolves
conflicts newest-wins).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from cdc.orchestrator.workers import group_members
from cdc.settings import Settings
from tests.acceptance.orchestrator_env import OrchestratorEnv, until

CUSTOMERS = 150


@pytest.fixture(scope="module")
async def env(settings: Settings) -> AsyncIterator[OrchestratorEnv]:
    environment = await OrchestratorEnv(settings, "race").create()
    try:
        await environment.seed(erp=True, crm=False, customers=CUSTOMERS)
        yield environment
    finally:
        await environment.drop()


async def test_updates_during_a_full_sync_end_with_the_newest_values(env: OrchestratorEnv) -> None:
    capture = env.start("capture")
    worker = env.start("worker")

    async def worker_joined() -> bool:
        assert worker.poll() is None, worker.stderr.read() if worker.stderr else "worker exited"
        assert capture.poll() is None, capture.stderr.read() if capture.stderr else "capture exited"
        return await group_members(env.settings) > 0

    await until(worker_joined, timeout=60, what="the worker joining its consumer group")
    first = env.cdc_json("full-sync", "--yes", "--restore")
    assert first["status"] == "succeeded" and first["worker"].startswith("consumer group")

    keys = [r["no"] for r in await env.rows("erp", "SELECT no FROM customer WHERE blocked <> 'all' ORDER BY no")]
    erp_only, crm_only, both = keys[0:40:2], keys[1:40:2], keys[40:60]
    accounts = {r["accountnumber"]: r["accountid"] for r in await env.rows(
        "crm", "SELECT accountnumber, accountid FROM account WHERE accountnumber = ANY($1::text[])", keys)}
    erp, crm = await env.connect("erp"), await env.connect("crm")
    final: dict[str, str] = {}
    try:
        second = env.start("full-sync", "--yes", "--restore", "--json")
        round_ = 0
        while second.poll() is None or round_ < 3:
            round_ += 1
            for no in erp_only:
                final[no] = f"ERP {no} #{round_}"
                await erp.execute("UPDATE customer SET name = $2 WHERE no = $1", no, final[no])
            for no in crm_only:
                final[no] = f"CRM {no} #{round_}"
                await crm.execute("UPDATE account SET name = $2 WHERE accountid = $1", accounts[no], final[no])
            for no in both:
                await erp.execute("UPDATE customer SET name = $2 WHERE no = $1", no, f"ERP {no} #{round_}")
                final[no] = f"CRM {no} #{round_}"
                await crm.execute("UPDATE account SET name = $2 WHERE accountid = $1", accounts[no], final[no])
            await asyncio.sleep(0.05)
        out, err = second.communicate(timeout=300)
        assert second.returncode == 0, err
        assert json.loads(out)["status"] == "succeeded"
        assert round_ > 3, "the updates should overlap the full sync"

        async def converged() -> bool:
            erp_names = {r["no"]: r["name"] for r in await erp.fetch(
                "SELECT no, name FROM customer WHERE no = ANY($1::text[])", list(final))}
            crm_names = {r["accountnumber"]: r["name"] for r in await crm.fetch(
                "SELECT accountnumber, name FROM account WHERE accountnumber = ANY($1::text[])", list(final))}
            return erp_names == final and crm_names == final

        await until(converged, timeout=90, what="both systems holding the newest names")
    finally:
        await erp.close()
        await crm.close()
    done = env.cdc("verify")
    assert done.returncode == 0, done.stdout + done.stderr
