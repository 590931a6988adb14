"""Issue #13, item 6: the dry run predicts what the run does. On both systems' data with matches (a shared part),
creations, lookups (contacts through customers, customers through salespeople and currencies) and failures
(contacts of blocked customers, customers whose salesperson exists only in the ERP), a dry run's counts equal the
real full sync's job counters, per mapping and direction."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from cdc.settings import Settings
from tests.acceptance.orchestrator_env import OrchestratorEnv, jobs_by

pytestmark = pytest.mark.asyncio(loop_scope="session")

AS_JOBS = {"created": "inserted", "coupled": "coupled", "updated": "modified", "unchanged": "unchanged",
           "skipped": "skipped", "failed": "failed"}


@pytest.fixture(scope="module")
async def env(settings: Settings) -> AsyncIterator[OrchestratorEnv]:
    environment = await OrchestratorEnv(settings, "predict").create()
    try:
        await environment.seed(erp=True, crm=True, customers=60, overlap=0.4, clear_salespeople=False)
        yield environment
    finally:
        await environment.drop()


async def test_a_dry_runs_counts_equal_the_real_runs_per_mapping_and_direction(env: OrchestratorEnv) -> None:
    predicted = env.cdc_json("full-sync", "--dry-run")["predictions"]
    run = env.cdc_json("full-sync", "--yes", "--restore")
    assert run["status"] == "succeeded"
    done = jobs_by(env.cdc_json("jobs", "--limit", "200"), kind="full", run_id=run["run_id"])
    mismatches = []
    for p in predicted:
        job = done[(p["mapping"], p["direction"])]
        expected = {category: job[counter] for category, counter in AS_JOBS.items()}
        got = {category: p[category] for category in AS_JOBS}
        if got != expected:
            mismatches.append(f"{p['mapping']} {p['direction']}: dry run {got}, run {expected}")
    assert not mismatches, "\n".join(mismatches)
    totals = {category: sum(p[category] for p in predicted) for category in AS_JOBS}
    assert totals["created"] and totals["coupled"] and totals["failed"] and totals["updated"], totals
