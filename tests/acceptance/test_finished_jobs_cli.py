"""Issue #13, item 7: a finished job stays as it finished. `cdc retry` of a full sync's error re-runs the record
later: that work counts on the job that does it (the live job of the window), not on the finished full-sync job."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from cdc.settings import Settings
from tests.acceptance.orchestrator_env import OrchestratorEnv, jobs_by, until

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture(scope="module")
async def env(settings: Settings) -> AsyncIterator[OrchestratorEnv]:
    environment = await OrchestratorEnv(settings, "finished").create()
    try:
        conn = await environment.connect("erp")
        try:
            await conn.execute("INSERT INTO customer (no, name) VALUES ('C1', 'Open Ltd')")
            await conn.execute("INSERT INTO customer (no, name, blocked) VALUES ('C2', 'Blocked Ltd', 'all')")
            await conn.execute("INSERT INTO contact (no, first_name, surname, email, customer_no) VALUES "
                               "('K1', 'Ada', 'Open', 'ada@open.example', 'C1'), "
                               "('K2', 'Bob', 'Blocked', 'bob@blocked.example', 'C2')")
        finally:
            await conn.close()
        yield environment
    finally:
        await environment.drop()


async def test_a_retry_after_the_full_sync_counts_on_the_live_job(env: OrchestratorEnv) -> None:
    run = env.cdc_json("full-sync", "--yes", "--restore")
    full = jobs_by(env.cdc_json("jobs", "--limit", "100"), kind="full", run_id=run["run_id"])[("CONTACTS", "to_crm")]
    assert (full["inserted"], full["failed"], full["status"]) == (1, 1, "succeeded"), full
    error = next(e for e in env.cdc_json("errors", "--mapping", "CONTACTS") if e["source_key"] == "K2")
    assert error["job_id"] == full["id"]

    env.start("worker")
    retried = env.cdc("retry", str(error["id"]))
    assert retried.returncode == 0, retried.stderr
    # the worker re-runs the record (it fails again: its customer is still outside the filter)
    again = await until(lambda: _open_error(env, "K2"), timeout=120, what="the retried record decided again")
    assert again["id"] != error["id"] and again["job_id"] != full["id"]

    jobs = env.cdc_json("jobs", "--limit", "100")
    after = next(j for j in jobs if j["id"] == full["id"])
    assert (after["failed"], after["inserted"], after["message"]) == (1, 1, full["message"])  # as it finished
    live = jobs_by(jobs, kind="live")[("CONTACTS", "to_crm")]
    assert live["id"] == again["job_id"] and live["failed"] == 1
    shown = json.loads(env.cdc("job", full["id"], "--json").stdout)
    assert shown["failed"] == 1 and [e["id"] for e in shown["errors"]] == [error["id"]]


async def _open_error(env: OrchestratorEnv, key: str) -> dict | None:
    found = [e for e in env.cdc_json("errors", "--mapping", "CONTACTS") if e["source_key"] == key]
    return found[0] if found else None
