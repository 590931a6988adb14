"""Full sync, sync modified, coupling commands and verify through the `cdc` command line, on the real stack:
ERP seeded with the demo data, CRM empty. No worker runs in the test's consumer group, so each command starts
one in its own process (and says so)."""

from __future__ import annotations

import json
import signal
from collections.abc import AsyncIterator
from typing import Any

import pytest

from cdc.settings import Settings
from tests.acceptance.orchestrator_env import OrchestratorEnv, counters, jobs_by

CUSTOMERS = 60

pytestmark = pytest.mark.acceptance


@pytest.fixture(scope="module")
async def env(settings: Settings) -> AsyncIterator[OrchestratorEnv]:
    environment = await OrchestratorEnv(settings, "full").create()
    try:
        await environment.seed(erp=True, crm=False, customers=CUSTOMERS)
        yield environment
    finally:
        await environment.drop()


async def expected_counts(env: OrchestratorEnv) -> dict[str, int]:
    """What the ERP holds, counted independently of the sync (the mappings' filters written as SQL)."""
    q = {
        "currency": "SELECT count(*) FROM currency",
        "unit": "SELECT count(*) FROM unit_of_measure",
        "customers": "SELECT count(*) FROM customer WHERE blocked <> 'all'",
        "contacts": "SELECT count(*) FROM contact c JOIN customer k ON k.no = c.customer_no "
                    "WHERE c.type = 'person' AND k.blocked <> 'all'",
        "orphan_contacts": "SELECT count(*) FROM contact c JOIN customer k ON k.no = c.customer_no "
                           "WHERE c.type = 'person' AND k.blocked = 'all'",
        "resources": "SELECT count(*) FROM resource WHERE NOT blocked",
        "items": "SELECT count(*) FROM item WHERE NOT blocked",
    }
    return {name: await env.value("erp", sql) for name, sql in q.items()}


def full_jobs(env: OrchestratorEnv, run_id: str) -> dict[tuple[str, str | None], dict[str, Any]]:
    return jobs_by(env.cdc_json("jobs", "--limit", "200"), kind="full", run_id=run_id)


async def test_full_sync_creates_and_couples_every_in_filter_record(env: OrchestratorEnv) -> None:
    expected = await expected_counts(env)
    assert expected["orphan_contacts"] > 0, "the demo data should hold contacts of customers outside the filter"

    done = env.cdc("full-sync", "--yes", "--restore", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "succeeded"
    assert result["worker"] == "in-process"
    assert "started one in this process" in done.stderr
    assert result["kept_creating"] is False

    jobs = full_jobs(env, result["run_id"])
    got = {key: counters(job) for key, job in jobs.items()}
    assert got == {
        ("CURRENCY", "to_crm"): {"inserted": expected["currency"]},
        ("SALESPEOPLE", "to_erp"): {},
        ("UNITOFMEASURE", "to_crm"): {"inserted": expected["unit"]},
        ("CUSTOMER", "to_crm"): {"inserted": expected["customers"]},
        ("CUSTOMER", "to_erp"): {"unchanged": expected["customers"]},
        ("CONTACTS", "to_crm"): {"inserted": expected["contacts"], "failed": expected["orphan_contacts"]},
        ("CONTACTS", "to_erp"): {"unchanged": expected["contacts"]},
        ("RESOURCE-PRODUCT", "to_crm"): {"inserted": expected["resources"]},
        ("RESOURCE-PRODUCT", "to_erp"): {"unchanged": expected["resources"]},
        ("ITEM-PRODUCT", "to_crm"): {"inserted": expected["items"]},
        ("ITEM-PRODUCT", "to_erp"): {"unchanged": expected["items"]},
    }
    assert all(job["status"] == "succeeded" for job in jobs.values())
    # dependency order: each mapping's jobs started after the previous mapping's
    order = [m for m, _ in sorted(jobs, key=lambda k: jobs[k]["started_at"])]
    assert list(dict.fromkeys(order)) == ["CURRENCY", "SALESPEOPLE", "UNITOFMEASURE", "CUSTOMER", "CONTACTS",
                                          "RESOURCE-PRODUCT", "ITEM-PRODUCT"]

    assert await env.value("crm", "SELECT count(*) FROM account") == expected["customers"]
    assert await env.value("crm", "SELECT count(*) FROM contact") == expected["contacts"]
    assert await env.value("state", "SELECT count(*) FROM cdc.couplings WHERE mapping = 'CUSTOMER'") \
        == expected["customers"]
    # the persistent "only coupled" flags were never touched
    assert await env.value("state", "SELECT count(*) FROM cdc.mapping_settings WHERE sync_only_coupled IS NOT NULL") \
        == 0


async def test_a_contact_of_a_customer_outside_the_filter_fails_with_a_clear_error(env: OrchestratorEnv) -> None:
    row = (await env.rows("erp", "SELECT c.no, c.customer_no FROM contact c JOIN customer k ON k.no = c.customer_no "
                                 "WHERE c.type = 'person' AND k.blocked = 'all' ORDER BY c.no LIMIT 1"))[0]
    errors = env.cdc_json("errors", "--mapping", "CONTACTS", "--limit", "1000")
    mine = [e for e in errors if e["source_key"] == row["no"]]
    assert len(mine) == 1
    assert mine[0]["message"] == (f"CONTACTS: contact {row['no']}: customer {row['customer_no']} is outside "
                                  "CUSTOMER's ERP filter (blocked ne 'all'): it is never coupled, so this record "
                                  "cannot sync")
    assert mine[0]["job_id"] is not None
    assert await env.value("state", "SELECT count(*) FROM cdc.parked_events") == 0


async def test_verify_finds_the_systems_equal(env: OrchestratorEnv) -> None:
    done = env.cdc("verify")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "everything matches" in done.stdout
    report = env.cdc_json("verify")
    assert report["diverges"] is False
    contacts = next(m for m in report["mappings"] if m["mapping"] == "CONTACTS")
    assert contacts["counts"]["blocked"] > 0 and contacts["counts"]["missing"] == 0


async def test_a_second_full_sync_changes_nothing(env: OrchestratorEnv) -> None:
    expected = await expected_counts(env)
    result = env.cdc_json("full-sync", "--yes", "--restore")
    jobs = full_jobs(env, result["run_id"])
    assert sum(job["inserted"] for job in jobs.values()) == 0
    assert sum(job["modified"] for job in jobs.values()) == 0
    assert counters(jobs[("CUSTOMER", "to_crm")]) == {"unchanged": expected["customers"]}
    assert counters(jobs[("CONTACTS", "to_crm")]) == {"unchanged": expected["contacts"],
                                                      "failed": expected["orphan_contacts"]}


async def test_dry_run_after_the_sync_predicts_nothing_to_create(env: OrchestratorEnv) -> None:
    before = await env.value("state", "SELECT count(*) FROM cdc.jobs")
    report = env.cdc_json("full-sync", "--dry-run")
    assert report["dry_run"] is True
    assert sum(p["created"] + p["coupled"] + p["updated"] for p in report["predictions"]) == 0
    assert report["likely_duplicates"] == []
    assert await env.value("state", "SELECT count(*) FROM cdc.jobs") == before


async def test_sync_modified_replays_only_what_changed(env: OrchestratorEnv) -> None:
    first = env.cdc_json("sync-modified")  # after the full syncs: what they wrote since their watermarks
    assert first["status"] == "succeeded"
    changed = [r["no"] for r in await env.rows("erp", "SELECT no FROM customer WHERE blocked <> 'all' ORDER BY no "
                                                      "LIMIT 2")]
    conn = await env.connect("erp")
    try:
        await conn.execute("UPDATE customer SET name = name || ' (renamed)' WHERE no = ANY($1::text[])", changed)
    finally:
        await conn.close()
    result = env.cdc_json("sync-modified")
    jobs = jobs_by(env.cdc_json("jobs", "--limit", "200"), kind="modified", run_id=result["run_id"])
    got = {key: counters(job) for key, job in jobs.items() if counters(job)}
    assert got == {("CUSTOMER", "to_crm"): {"modified": 2}, ("CUSTOMER", "to_erp"): {"unchanged": 2}}
    names = await env.rows("crm", "SELECT name FROM account WHERE accountnumber = ANY($1::text[])", changed)
    assert sorted(r["name"].endswith(" (renamed)") for r in names) == [True, True]
    again = env.cdc_json("sync-modified")
    jobs = jobs_by(env.cdc_json("jobs", "--limit", "200"), kind="modified", run_id=again["run_id"])
    assert {key: counters(job) for key, job in jobs.items() if counters(job)} == {}
    watermark = await env.value("state", "SELECT erp_watermark FROM cdc.mapping_settings WHERE mapping = 'CUSTOMER'")
    assert watermark is not None


async def test_sync_one_mapping(env: OrchestratorEnv) -> None:
    result = env.cdc_json("sync", "--mapping", "UNITOFMEASURE", "--full", "--yes", "--restore")
    jobs = jobs_by(env.cdc_json("jobs", "--limit", "200"), kind="manual", run_id=result["run_id"])
    assert {key: counters(job) for key, job in jobs.items()} == {("UNITOFMEASURE", "to_crm"): {"unchanged": 10}}
    unknown = env.cdc("sync", "--mapping", "NOPE")
    assert unknown.returncode == 2 and "no mapping named 'NOPE'" in unknown.stderr


async def test_full_sync_without_a_terminal_needs_yes(env: OrchestratorEnv) -> None:
    done = env.cdc("full-sync")
    assert done.returncode == 2  # a usage error, as everywhere
    assert done.stderr.strip().count("\n") == 0 and "--yes" in done.stderr


async def test_couple_and_uncouple_by_hand(env: OrchestratorEnv) -> None:
    pair = (await env.rows("state", "SELECT erp_key, crm_key FROM cdc.couplings WHERE mapping = 'CUSTOMER' "
                                    "ORDER BY erp_key LIMIT 1"))[0]
    done = env.cdc("uncouple", "--mapping", "CUSTOMER", "--erp", pair["erp_key"])
    assert done.returncode == 0, done.stderr
    again = env.cdc("uncouple", "--mapping", "CUSTOMER", "--erp", pair["erp_key"])
    assert again.returncode == 1 and "is not coupled" in again.stderr
    done = env.cdc("couple", "--mapping", "CUSTOMER", pair["erp_key"], pair["crm_key"].upper())
    assert done.returncode == 0, done.stderr
    taken = env.cdc("couple", "--mapping", "CUSTOMER", pair["erp_key"], pair["crm_key"])
    assert taken.returncode == 1
    assert taken.stderr.strip().count("\n") == 0 and "already coupled" in taken.stderr
    missing = env.cdc("couple", "--mapping", "CUSTOMER", "C99999", pair["crm_key"])
    assert missing.returncode == 1 and "no ERP record 'C99999'" in missing.stderr
    jobs = [j for j in env.cdc_json("jobs", "--kind", "coupling", "--mapping", "CUSTOMER")]
    assert [counters(j) for j in jobs[:2]] == [{"coupled": 1}, {"uncoupled": 1}]


async def test_match_couple_recouples_by_the_match_fields(env: OrchestratorEnv) -> None:
    done = env.cdc("uncouple", "--mapping", "UNITOFMEASURE", "--all")
    assert done.returncode == 0, done.stderr
    report = env.cdc_json("match-couple", "--mapping", "UNITOFMEASURE")
    assert len(report["coupled"]) == 10 and report["ambiguous"] == [] and report["missing"] == []
    assert counters(report["job"]) == {"coupled": 10}
    assert env.cdc("verify", "--mapping", "UNITOFMEASURE").returncode == 0


async def test_keep_creating_clears_only_coupled_for_the_mappings_of_the_run(env: OrchestratorEnv) -> None:
    result = env.cdc_json("sync", "--mapping", "RESOURCE-PRODUCT", "--full", "--yes", "--keep-creating")
    assert result["kept_creating"] is True
    assert result["sync_only_coupled_before"]["RESOURCE-PRODUCT"] is True
    assert result["sync_only_coupled_after"]["RESOURCE-PRODUCT"] is False
    rows = await env.rows("state", "SELECT mapping, sync_only_coupled FROM cdc.mapping_settings "
                                   "WHERE sync_only_coupled IS NOT NULL")
    assert [(r["mapping"], r["sync_only_coupled"]) for r in rows] == [("RESOURCE-PRODUCT", False)]


async def test_ctrl_c_cancels_cleanly_and_says_how_to_resume(env: OrchestratorEnv) -> None:
    overrides = "SELECT count(*) FROM cdc.mapping_settings WHERE sync_only_coupled IS NOT NULL"
    before = await env.value("state", overrides)
    process = env.start("full-sync", "--yes", "--restore", "--json")
    assert process.stderr is not None
    for line in process.stderr:  # the first note comes before the first replay
        if "started one in this process" in line:
            break
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    result = json.loads(out)
    assert result["status"] == "cancelled"
    assert result["resume"] and all(c.startswith("cdc sync --mapping ") and c.endswith(" --full")
                                    for c in result["resume"])
    assert result["resume"] == [f"cdc sync --mapping {name} --full" for name in result["remaining"]]
    cancelled = [job for job in result["jobs"] if job["status"] == "cancelled"]
    assert {job["mapping"] for job in cancelled} <= {result["remaining"][0]}  # none if stopped between mappings
    assert all(job["status"] in ("succeeded", "cancelled") for job in result["jobs"])
    assert await env.value("state", "SELECT status FROM cdc.replay_runs WHERE id = $1::uuid",
                           result["run_id"]) == "cancelled"
    assert await env.value("state", overrides) == before
