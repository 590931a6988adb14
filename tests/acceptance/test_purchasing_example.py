"""examples/purchasing end to end through the command line, as a user runs it: a mapping file for a table pair
that is not the demo's (ERP vendors numbered by the ERP's own series ↔ CRM suppliers) using every part of the
mapping language — series keys, LIKE filters, per-field lookup failures, after_match, normalisation.

Dry run, full sync with data on both sides, live changes both ways through `cdc capture` and `cdc worker`, and the
worker killed (SIGKILL) while it writes a vendor whose number it has allocated and announced: the next worker
creates exactly one vendor, with exactly that number."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from cdc.orchestrator.workers import group_members
from cdc.settings import Settings
from tests.acceptance.orchestrator_env import OrchestratorEnv, counters, jobs_by, until

pytestmark = pytest.mark.acceptance

PURCHASING = Path(__file__).resolve().parents[2] / "examples" / "purchasing"
VENDORS = 40
MATCHED = range(11, 16)        # vendors the CRM holds too (same e-mail, another name, changed later)
PAYING_THROUGH = range(31, 41)  # vendor n pays through vendor n - 30
CRM_ONLY = 10


@pytest.fixture(scope="module")
async def env(settings: Settings) -> AsyncIterator[OrchestratorEnv]:
    schemas = {"erp": (PURCHASING / "erp.sql").read_text(), "crm": (PURCHASING / "crm.sql").read_text()}
    environment = await OrchestratorEnv(settings, "purchasing", schemas=schemas,
                                        mapping_file=PURCHASING / "mappings.yaml").create()
    try:
        await seed(environment)
        yield environment
    finally:
        await environment.drop()


async def seed(env: OrchestratorEnv) -> None:
    erp, crm = await env.connect("erp"), await env.connect("crm")
    try:
        await erp.execute("INSERT INTO currency(code, description) VALUES ('EUR', 'Euro'), ('USD', 'US dollar')")
        await erp.execute("INSERT INTO purchaser(name, email) VALUES ('Anna Buyer', 'anna@buyers.example'), "
                          "('Only Erp', 'only@erp.example')")  # P0001, P0002 from the series
        for n in range(1, VENDORS + 1):
            await erp.execute(
                "INSERT INTO vendor(name, email, country_code, purchaser_code, currency_code, pay_to_vendor_no) "
                "VALUES ($1, $2, $3, $4, $5, $6)",
                f"Vendor {n}", f"Vendor{n}@Vendors.Example", ["no", " se", "DK", "fi "][n % 4],
                ["P0001", "P0002", None][n % 3], ["EUR", "USD"][n % 2],
                f"V{n - 30:06d}" if n in PAYING_THROUGH else None)
        await erp.execute("INSERT INTO vendor(no, name) VALUES ('TMP-0001', 'A draft')")
        await erp.execute("INSERT INTO vendor(name) VALUES ('Test vendor, do not use')")  # V000041

        anna, disabled = uuid.uuid4(), uuid.uuid4()
        await crm.execute("INSERT INTO systemuser(systemuserid, fullname, internalemailaddress, isdisabled) VALUES "
                          "($1, 'Anna Buyer', 'ANNA@buyers.example', false), "
                          "($2, 'Gone Away', 'gone@buyers.example', true), "
                          "(gen_random_uuid(), 'Carl New', 'carl@buyers.example', false)", anna, disabled)
        yen = await crm.fetchval("INSERT INTO transactioncurrency(isocurrencycode, currencyname) "
                                 "VALUES ('JPY', 'Yen') RETURNING transactioncurrencyid")
        for n in MATCHED:  # inserted after the ERP's vendors: the newer records
            await crm.execute("INSERT INTO supplier(name, emailaddress1, address1_country) VALUES ($1, $2, 'NO')",
                              f"CRM name {n}", f"vendor{n}@vendors.example")
        for k in range(CRM_ONLY):
            await crm.execute("INSERT INTO supplier(name, emailaddress1, address1_country, ownerid) "
                              "VALUES ($1, $2, $3, $4)", f"CRM Supplier {k}", f"crm{k}@suppliers.example",
                              "nl" if k % 2 else "BE", anna)
        await crm.execute("INSERT INTO supplier(name, ownerid) VALUES ('Owned by a disabled user', $1)", disabled)
        await crm.execute("INSERT INTO supplier(name) VALUES ('ZZ_Archived Ltd')")
        await crm.execute("INSERT INTO supplier(name, transactioncurrencyid) VALUES ('Tokyo Parts', $1)", yen)
    finally:
        await erp.close()
        await crm.close()


async def sequence(env: OrchestratorEnv, name: str) -> tuple[int, bool]:
    row = (await env.rows("erp", f"SELECT last_value, is_called FROM {name}"))[0]
    return row["last_value"], row["is_called"]


async def test_1_the_dry_run_predicts_without_taking_a_number_and_names_whose_values_prevail(
        env: OrchestratorEnv) -> None:
    before = await sequence(env, "vendor_no")
    report = env.cdc_json("full-sync", "--dry-run")
    assert await sequence(env, "vendor_no") == before, "a prediction takes no number from the series"
    vendor = {p["direction"]: p for p in report["predictions"] if p["mapping"] == "VENDOR"}
    assert vendor["to_crm"]["after_match"] == "the newest record's values prevail"
    assert (vendor["to_crm"]["created"], vendor["to_crm"]["coupled"]) == (VENDORS - len(MATCHED), len(MATCHED))
    assert vendor["to_erp"]["created"] == CRM_ONLY + 1 and vendor["to_erp"]["failed"] == 1
    table = env.cdc("full-sync", "--dry-run")
    assert table.returncode == 0, table.stderr
    assert "the newest record's values prevail" in " ".join(table.stdout.split())


async def test_2_a_full_sync_with_data_on_both_sides(env: OrchestratorEnv) -> None:
    done = env.cdc("full-sync", "--yes", "--keep-creating", "--json", timeout=600)
    assert done.returncode == 0, done.stderr
    run = json.loads(done.stdout)
    jobs = {key: counters(job) for key, job in jobs_by(env.cdc_json("jobs", "--limit", "50"),
                                                         run_id=run["run_id"]).items()}
    assert jobs[("PURCHASER", "to_erp")] == {"inserted": 1, "coupled": 1, "unchanged": 1}  # Anna matched, Carl new
    assert jobs[("VENDOR", "to_crm")] == {"inserted": VENDORS - len(MATCHED), "coupled": len(MATCHED),
                                          "modified": len(MATCHED)}
    assert jobs[("VENDOR", "to_erp")] == {"inserted": CRM_ONLY + 1, "unchanged": VENDORS, "failed": 1}

    # new records took the next numbers of the ERP's own series, not hashes
    assert await env.value("erp", "SELECT code FROM purchaser WHERE email = 'carl@buyers.example'") == "P0003"
    created = sorted(r["no"] for r in await env.rows("erp", "SELECT no FROM vendor WHERE name LIKE 'CRM Supplier%' "
                                                            "OR name = 'Owned by a disabled user'"))
    assert created == [f"V{n:06d}" for n in range(42, 42 + CRM_ONLY + 1)]
    # filters: a draft, a test vendor and an archived supplier stayed where they were
    assert await env.value("crm", "SELECT count(*) FROM supplier WHERE suppliernumber IN ('TMP-0001', 'V000041')") == 0
    assert await env.value("erp", "SELECT count(*) FROM vendor WHERE name LIKE 'ZZ%'") == 0
    # after a match the newer record's values prevailed, although the ERP side was replayed first
    for n in MATCHED:
        names = await env.value("erp", "SELECT name FROM vendor WHERE no = $1", f"V{n:06d}"), await env.value(
            "crm", "SELECT name FROM supplier WHERE suppliernumber = $1", f"V{n:06d}")
        assert names == (f"CRM name {n}", f"CRM name {n}")
    # lookups: cleared (purchaser unknown to the CRM), failed (currency not coupled), waited for (paid through)
    assert await env.value("crm", "SELECT count(*) FROM supplier s WHERE suppliernumber IN "
                                  "(SELECT unnest($1::text[])) AND ownerid IS NULL",
                           [f"V{n:06d}" for n in range(1, VENDORS + 1) if n % 3 == 1]) == \
        len([n for n in range(1, VENDORS + 1) if n % 3 == 1])
    assert await env.value("erp", "SELECT count(*) FROM vendor WHERE purchaser_code = 'P0002'") == \
        len([n for n in range(1, VENDORS + 1) if n % 3 == 1]), "the ERP keeps its purchaser"
    assert await env.value("erp", "SELECT purchaser_code FROM vendor WHERE name = 'Owned by a disabled user'") is None
    errors = env.cdc_json("errors")
    tokyo = [e for e in errors if e["mapping"] == "VENDOR" and "CURRENCY (on_lookup_failure: fail)" in e["message"]]
    assert len(tokyo) == 1
    wrong_parent = await env.value("crm", """
        SELECT count(*) FROM supplier c JOIN supplier p ON p.supplierid = c.paytosupplierid
        WHERE p.suppliernumber <> 'V' || lpad((substr(c.suppliernumber, 2)::int - 30)::text, 6, '0')""")
    assert wrong_parent == 0
    assert await env.value("crm", "SELECT count(*) FROM supplier WHERE paytosupplierid IS NOT NULL") == \
        len(PAYING_THROUGH)
    await both_sides_normalised(env)


async def both_sides_normalised(env: OrchestratorEnv) -> None:
    pairs = await pairs_of(env)
    assert pairs, "no coupled vendors"
    for erp, crm in pairs:
        assert erp["country_code"] == crm["address1_country"] == erp["country_code"].strip().upper(), (erp, crm)
        assert erp["email"] == crm["emailaddress1"], (erp, crm)
        assert erp["email"] is None or erp["email"] == erp["email"].strip().lower()


async def pairs_of(env: OrchestratorEnv) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    couplings = await env.rows("state", "SELECT erp_key, crm_key FROM cdc.couplings WHERE mapping = 'VENDOR'")
    erp = {r["no"]: dict(r) for r in await env.rows("erp", "SELECT * FROM vendor")}
    crm = {str(r["supplierid"]): dict(r) for r in await env.rows("crm", "SELECT * FROM supplier")}
    return [(erp[c["erp_key"]], crm[c["crm_key"]]) for c in couplings]


async def test_3_live_changes_both_ways(env: OrchestratorEnv) -> None:
    await start_pipeline(env)
    erp, crm = await env.connect("erp"), await env.connect("crm")
    try:
        typed = await erp.fetchval("INSERT INTO vendor(name, email, country_code) "
                                   "VALUES ('Typed Live', 'Live@Typed.Example', 'ee') RETURNING no")
        supplier = await coupled(env, "erp", typed)
        await until(lambda: env.value("crm", "SELECT address1_country = 'EE' AND emailaddress1 = 'live@typed.example' "
                                             "FROM supplier WHERE supplierid = $1", uuid.UUID(supplier)),
                    what="the typed vendor in the CRM, normalised")
        await until(lambda: env.value("erp", "SELECT country_code = 'EE' FROM vendor WHERE no = $1", typed),
                    what="and normalised on its own side")

        await crm.execute("UPDATE supplier SET address1_country = 'lt' WHERE supplierid = $1", uuid.UUID(supplier))
        await until(lambda: env.value("erp", "SELECT country_code = 'LT' FROM vendor WHERE no = $1", typed),
                    what="the CRM's change in the ERP")
        await until(lambda: env.value("crm", "SELECT address1_country = 'LT' FROM supplier WHERE supplierid = $1",
                                      uuid.UUID(supplier)), what="and normalised in the CRM")

        fresh = await crm.fetchval("INSERT INTO supplier(name, address1_country) VALUES ('Fresh Live', 'PL') "
                                   "RETURNING supplierid")
        vendor = await coupled(env, "crm", str(fresh))
        assert re.fullmatch(r"V\d{6}", vendor) and vendor == f"V{(await sequence(env, 'vendor_no'))[0]:06d}"
        assert await crm.fetchval("SELECT suppliernumber FROM supplier WHERE supplierid = $1", fresh) == vendor
    finally:
        await erp.close()
        await crm.close()
    await both_sides_normalised(env)


async def test_4_a_worker_killed_between_allocating_a_number_and_writing_it(env: OrchestratorEnv) -> None:
    worker = next(p for p in env.processes if p.args[-1] == "worker" and p.poll() is None)
    erp = await env.connect("erp")
    try:
        # the vendor table is locked: the worker allocates the number, announces it, and waits in its INSERT
        held = erp.transaction()
        await held.start()
        await erp.execute("LOCK TABLE vendor IN SHARE MODE")
        supplier = await env.value("crm", "INSERT INTO supplier(name) VALUES ('Interrupted Supply') "
                                          "RETURNING supplierid")
        announced = await until(lambda: env.value(
            "state", "SELECT destination_key FROM cdc.coupling_intents WHERE mapping = 'VENDOR' AND source_key = $1",
            str(supplier)), what="the creation announced with its number")
        await until(lambda: env.value("erp", "SELECT count(*) > 0 FROM pg_locks l JOIN pg_class c ON c.oid = "
                                             "l.relation WHERE c.relname = 'vendor' AND NOT l.granted"),
                    what="the worker waiting to write the vendor")
        allocated = await sequence(env, "vendor_no")
        assert announced == f"V{allocated[0]:06d}"
        worker.kill()
        worker.wait(30)
        await held.rollback()
    finally:
        await erp.close()
    assert await env.value("erp", "SELECT count(*) FROM vendor WHERE no = $1", announced) == 0, \
        "the killed worker's write never committed"

    await start_worker(env)
    vendor = await coupled(env, "crm", str(supplier))
    assert vendor == announced, "the replay created the vendor on the number it had announced"
    assert await env.value("erp", "SELECT count(*) FROM vendor WHERE name = 'Interrupted Supply'") == 1
    assert await sequence(env, "vendor_no") == allocated, "no second number was taken"
    assert await env.value("crm", "SELECT suppliernumber FROM supplier WHERE supplierid = $1", supplier) == announced
    await until(lambda: env.value("state", "SELECT count(*) = 0 FROM cdc.coupling_intents"),
                what="no intent left behind")

    done = env.cdc("verify", "--json")
    report = json.loads(done.stdout)
    vendor_check = next(m for m in report["mappings"] if m["mapping"] == "VENDOR")
    assert vendor_check["differences"] == [] and vendor_check["duplicates"] == [], vendor_check
    assert [b["key"] for b in vendor_check["blocked"]] == [
        str(r["supplierid"]) for r in await env.rows("crm", "SELECT supplierid FROM supplier "
                                                            "WHERE name = 'Tokyo Parts'")], "blocked: its currency"


# ---------------------------------------------------------------- helpers

async def coupled(env: OrchestratorEnv, system: str, key: str) -> str:
    """The partner's key once the VENDOR record is coupled."""
    partner = "crm_key" if system == "erp" else "erp_key"
    return await until(lambda: env.value("state", f"SELECT {partner} FROM cdc.couplings WHERE mapping = 'VENDOR' "
                                                  f"AND {system}_key = $1", key), what=f"{system} {key} coupled")


async def start_pipeline(env: OrchestratorEnv) -> None:
    capture = env.start("capture")

    async def capturing() -> bool:
        assert capture.poll() is None, capture.stderr.read() if capture.stderr else "capture exited"
        for system in ("erp", "crm"):
            if not await env.value(system, "SELECT count(*) > 0 FROM pg_replication_slots WHERE database = "
                                           "current_database() AND confirmed_flush_lsn IS NOT NULL"):
                return False
        return True

    await until(capturing, timeout=60, what="capture streaming both systems")
    await start_worker(env)


async def start_worker(env: OrchestratorEnv) -> None:
    worker = env.start("worker")

    async def joined() -> bool:
        assert worker.poll() is None, worker.stderr.read() if worker.stderr else "worker exited"
        return await group_members(env.settings) > 0

    await until(joined, timeout=60, what="the worker joining its consumer group")
