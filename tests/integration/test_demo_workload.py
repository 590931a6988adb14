"""The load generator against seeded throwaway databases `cdc_test_demo_<random>_*`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import asyncpg
import pytest

from cdc.demo.seed import seed
from cdc.demo.setup import create_databases
from cdc.demo.workload import generate
from cdc.settings import Settings
from tests.integration.demo_fixtures import throwaway


@pytest.fixture
async def seeded(settings: Settings) -> AsyncIterator[Settings]:
    async for s in throwaway(settings):
        await create_databases(s)
        await seed(s, erp=True, crm=True, customers=200, seed=4, overlap=0.3)
        yield s


async def test_changes_arrive_at_the_rate_on_both_sides_each_its_own_transaction(seeded: Settings):
    erp = await asyncpg.connect(seeded.dsn("erp"))
    crm = await asyncpg.connect(seeded.dsn("crm"))
    try:
        since = await erp.fetchval("SELECT clock_timestamp()")
        xid = {"erp": await erp.fetchval("SELECT pg_current_xact_id()::text::bigint"),
               "crm": await crm.fetchval("SELECT pg_current_xact_id()::text::bigint")}
        report = await generate(seeded, rate=100, duration=2.0, seed=9)
        erp_changed = await erp.fetchval("SELECT count(*) FROM customer WHERE modified_at > $1", since)
        crm_changed = await crm.fetchval("SELECT count(*) FROM account WHERE modifiedon > $1", since)
        transactions = {"erp": await erp.fetchval("SELECT pg_current_xact_id()::text::bigint") - xid["erp"],
                        "crm": await crm.fetchval("SELECT pg_current_xact_id()::text::bigint") - xid["crm"]}
        new_customers = await erp.fetchval("SELECT count(*) FROM customer WHERE no > 'C00200'")
    finally:
        await erp.close()
        await crm.close()
    assert report.failed == 0
    assert 170 <= report.total + report.missed <= 205
    assert 1.9 <= report.seconds < 4
    by_system = {system: sum(n for (s, _, _), n in report.changes.items() if s == system) for system in ("erp", "crm")}
    assert min(by_system.values()) > 0.3 * report.total
    assert erp_changed > 0 and crm_changed > 0
    inserted = report.changes["erp", "customer", "insert"]
    assert new_customers == inserted
    # every change committed on its own (the counter also moves for other databases' transactions)
    assert transactions["erp"] >= by_system["erp"] and transactions["crm"] >= by_system["crm"]


async def test_stop_ends_the_load_promptly(seeded: Settings):
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(1.5, stop.set)
    started = time.monotonic()
    report = await generate(seeded, rate=20, duration=None, seed=1, stop=stop)
    assert time.monotonic() - started < 3.5
    assert report.total > 0 and report.failed == 0
