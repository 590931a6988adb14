"""`cdc demo setup` and `cdc demo seed` on the real PostgreSQL, in throwaway databases `cdc_test_demo_<random>_*`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from cdc.database import quote_ident
from cdc.demo import seed as seeding
from cdc.demo.dataset import COLUMNS, TABLES, Dataset, Shape, collect
from cdc.demo.setup import apply_schema, create_databases
from cdc.errors import CdcError, ConfigError
from cdc.pair import SYSTEMS
from cdc.settings import Settings
from tests.integration.demo_fixtures import admin, throwaway

SHAPE = Shape(customers=300, seed=7, overlap=0.3)


@pytest.fixture
async def databases(settings: Settings) -> AsyncIterator[Settings]:
    """Settings naming three databases that do not exist yet (dropped afterwards)."""
    async for s in throwaway(settings):
        yield s


@pytest.fixture(scope="module")
async def seeded(settings: Settings) -> AsyncIterator[dict[str, Any]]:
    """Demo databases seeded with SHAPE on both sides, with the catalog before the seed and the seed's window."""
    async for s in throwaway(settings):
        await create_databases(s)
        before = {system: await catalog(s, system) for system in SYSTEMS}
        started = await clock(s)
        report = await seeding.seed(s, erp=True, crm=True, customers=SHAPE.customers, seed=SHAPE.seed,
                                    overlap=SHAPE.overlap)
        yield {"settings": s, "report": report, "catalog": before, "window": (started, await clock(s))}


async def clock(settings: Settings):
    conn = await asyncpg.connect(settings.dsn("erp"))
    try:
        return await conn.fetchval("SELECT clock_timestamp()")
    finally:
        await conn.close()


async def catalog(settings: Settings, system: str) -> dict[str, set[str]]:
    """Index and foreign-key definitions, triggers and their state on the demo tables."""
    conn = await asyncpg.connect(settings.dsn(system))
    try:
        tables = list(TABLES[system])
        indexes = await conn.fetch("SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' "
                                   "AND tablename = ANY($1::text[])", tables)
        keys = await conn.fetch("SELECT conrelid::regclass::text || ' ' || pg_get_constraintdef(oid) AS d "
                                "FROM pg_constraint WHERE contype IN ('f', 'p', 'u', 'c') "
                                "AND conrelid::regclass::text = ANY($1::text[])", tables)
        triggers = await conn.fetch("SELECT tgrelid::regclass::text || ' ' || tgname || ' ' || tgenabled::text AS t "
                                    "FROM pg_trigger WHERE NOT tgisinternal")
        return {"indexes": {r["indexdef"] for r in indexes}, "constraints": {r["d"] for r in keys},
                "triggers": {r["t"] for r in triggers}}
    finally:
        await conn.close()


async def fetch_all(settings: Settings, system: str, table: str) -> list[tuple]:
    conn = await asyncpg.connect(settings.dsn(system))
    try:
        columns = ", ".join(map(quote_ident, COLUMNS[system, table]))
        return [tuple(r) for r in await conn.fetch(f"SELECT {columns} FROM {quote_ident(table)}")]
    finally:
        await conn.close()


async def counts(settings: Settings) -> dict[tuple[str, str], int]:
    result = {}
    for system in SYSTEMS:
        conn = await asyncpg.connect(settings.dsn(system))
        try:
            for table in TABLES[system]:
                result[system, table] = await conn.fetchval(f"SELECT count(*) FROM {quote_ident(table)}")
        finally:
            await conn.close()
    return result


# ---------------------------------------------------------------- setup


async def test_setup_creates_the_databases_and_applying_the_schemas_again_changes_nothing(databases: Settings):
    s = databases
    assert await create_databases(s) == {s.erp_database: "created", s.crm_database: "created",
                                         s.state_database: "created"}
    first = {system: await catalog(s, system) for system in SYSTEMS}
    assert await create_databases(s) == {s.erp_database: "exists", s.crm_database: "exists",
                                         s.state_database: "exists"}
    for system in SYSTEMS:
        await apply_schema(s.dsn(system), system)
    assert {system: await catalog(s, system) for system in SYSTEMS} == first
    erp_triggers = {t.split()[0] for t in first["erp"]["triggers"] if "touch_modified_at" in t}
    assert erp_triggers == set(TABLES["erp"])
    assert {t.split()[0] for t in first["crm"]["triggers"] if "touch_modifiedon" in t} == set(TABLES["crm"])


async def test_reset_drops_the_replication_slots_then_recreates_erp_and_crm_only(databases: Settings):
    s = databases
    await create_databases(s)
    slot = f"{s.erp_database}_slot"
    erp = await asyncpg.connect(s.dsn("erp"))
    try:
        await erp.execute("INSERT INTO currency (code) VALUES ('EUR')")
        await erp.execute("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", slot)
    finally:
        await erp.close()
    state = await asyncpg.connect(s.dsn("state"))
    try:
        await state.execute("CREATE TABLE kept (id int)")
    finally:
        await state.close()

    assert await create_databases(s, reset=True) == {s.erp_database: "recreated", s.crm_database: "recreated",
                                                     s.state_database: "exists"}
    conn = await admin(s)
    try:
        assert await conn.fetchval("SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1", slot) == 0
    finally:
        await conn.close()
    assert await counts(s) == {key: 0 for key in COLUMNS}
    state = await asyncpg.connect(s.dsn("state"))
    try:
        assert await state.fetchval("SELECT to_regclass('kept')") is not None
    finally:
        await state.close()


async def test_reset_refuses_a_database_given_by_an_explicit_dsn(settings: Settings):
    explicit = settings.model_copy(update={"erp_dsn": settings.local_dsn("cdc_test_demo_never")})
    with pytest.raises(ConfigError, match="CDC_ERP_DSN"):
        await create_databases(explicit, reset=True)


# ---------------------------------------------------------------- seed


async def test_seeded_counts_match_the_report_and_the_generated_data(seeded):
    s, report = seeded["settings"], seeded["report"]
    expected, dataset = collect(SHAPE)
    assert report.rows == {key: len(rows) for key, rows in expected.items()}
    assert await counts(s) == report.rows
    assert report.near_duplicates == len(dataset.near_duplicates)
    for key in [("erp", "customer"), ("erp", "contact"), ("crm", "account"), ("crm", "product")]:
        assert sorted(await fetch_all(s, *key)) == sorted(expected[key]), key


async def test_constraints_indexes_and_triggers_are_back_and_every_reference_holds(seeded):
    s = seeded["settings"]
    for system in SYSTEMS:
        assert await catalog(s, system) == seeded["catalog"][system]
    erp = await asyncpg.connect(s.dsn("erp"))
    crm = await asyncpg.connect(s.dsn("crm"))
    try:
        assert await erp.fetchval("SELECT count(*) FROM contact t WHERE customer_no IS NOT NULL "
                                  "AND NOT EXISTS (SELECT 1 FROM customer WHERE no = t.customer_no)") == 0
        assert await erp.fetchval("SELECT count(*) FROM customer t WHERE salesperson_code IS NOT NULL "
                                  "AND NOT EXISTS (SELECT 1 FROM salesperson WHERE code = t.salesperson_code)") == 0
        assert await crm.fetchval("SELECT count(*) FROM contact t WHERE parentcustomerid IS NOT NULL AND NOT "
                                  "EXISTS (SELECT 1 FROM account WHERE accountid = t.parentcustomerid)") == 0
        assert await crm.fetchval("SELECT count(*) FROM account t WHERE ownerid IS NULL OR NOT EXISTS "
                                  "(SELECT 1 FROM systemuser WHERE systemuserid = t.ownerid)") == 0
        assert await erp.fetchval("SELECT count(*) FROM contact WHERE customer_no IS NOT NULL") > SHAPE.customers
    finally:
        await erp.close()
        await crm.close()


async def test_overlapping_records_match_across_the_databases(seeded):
    s = seeded["settings"]
    erp = await asyncpg.connect(s.dsn("erp"))
    crm = await asyncpg.connect(s.dsn("crm"))
    try:
        customers = {(r["email"], r["name"]) for r in await erp.fetch(
            "SELECT email, name FROM customer WHERE blocked <> 'all'")}
        accounts = {(r["emailaddress1"], r["name"]) for r in await crm.fetch(
            "SELECT emailaddress1, name FROM account WHERE statecode = 0 AND customertypecode = 3")}
        all_customers = {r["email"].lower() for r in await erp.fetch("SELECT email FROM customer")}
        account_emails = [r["e"] for r in await crm.fetch("SELECT lower(emailaddress1) AS e FROM account")]
        items = {r["no"] for r in await erp.fetch("SELECT no FROM item")}
        products = {r["productnumber"] for r in await crm.fetch(
            "SELECT productnumber FROM product WHERE producttypecode = 1")}
        contacts = {r["email"] for r in await erp.fetch(
            "SELECT email FROM contact WHERE type = 'person' AND customer_no IS NOT NULL")}
        crm_contacts = {r["emailaddress1"] for r in await crm.fetch(
            "SELECT emailaddress1 FROM contact WHERE parentcustomerid IS NOT NULL")}
    finally:
        await erp.close()
        await crm.close()
    shared = round(SHAPE.overlap * SHAPE.customers)
    in_scope = customers & accounts
    assert shared * 0.9 <= len(in_scope) <= shared  # a shared customer that is blocked is inactive in the CRM too
    near_by_email_case = 1
    assert sum(e in all_customers for e in account_emails) == shared + near_by_email_case
    assert len(items & products) == round(SHAPE.overlap * SHAPE.items)
    assert 0.25 < len(contacts & crm_contacts) / len(contacts) < 0.35


async def test_modified_on_columns_are_set_by_the_databases_during_the_seed(seeded):
    s = seeded["settings"]
    started, finished = seeded["window"]
    for system, column in (("erp", "modified_at"), ("crm", "modifiedon")):
        conn = await asyncpg.connect(s.dsn(system))
        try:
            for table in TABLES[system]:
                low, high = await conn.fetchrow(f"SELECT min({column}), max({column}) FROM {quote_ident(table)}")
                assert started <= low <= high <= finished, (system, table)
        finally:
            await conn.close()


async def test_a_seeded_database_is_not_seeded_again(seeded):
    s = seeded["settings"]
    before = await counts(s)
    with pytest.raises(CdcError, match=r"^erp already has 300 customers: pass --reset$"):
        await seeding.seed(s, erp=True, crm=True, customers=10, seed=1, overlap=0.3)
    with pytest.raises(CdcError, match=r"^crm already has 300 accounts: pass --reset$"):
        await seeding.seed(s, erp=False, crm=True, customers=10, seed=1, overlap=0.3)
    assert await counts(s) == before


async def test_reset_replaces_the_data_and_one_side_can_be_seeded_alone(databases: Settings):
    s = databases
    await create_databases(s)
    await seeding.seed(s, erp=True, crm=True, customers=120, seed=2, overlap=0.5)
    report = await seeding.seed(s, erp=True, crm=False, customers=40, seed=3, overlap=0.5, reset=True)
    rows = await counts(s)
    assert rows["erp", "customer"] == 40 == report.rows["erp", "customer"]
    assert rows["crm", "account"] == 120  # the CRM was not touched
    assert set(report.rows) == {key for key in COLUMNS if key[0] == "erp"}
    crm_alone = await seeding.seed(s, erp=False, crm=True, customers=40, seed=3, overlap=0.5, reset=True)
    expected, _ = collect(Shape(customers=40, seed=3, overlap=0.5))
    assert sorted(await fetch_all(s, "crm", "account")) == sorted(expected["crm", "account"])
    assert crm_alone.rows["crm", "contact"] == len(expected["crm", "contact"])


async def test_a_failed_seed_leaves_no_rows_and_the_schema_intact(databases: Settings, monkeypatch):
    s = databases
    await create_databases(s)
    before = {system: await catalog(s, system) for system in SYSTEMS}

    class Broken(Dataset):
        def batches(self, block: int = 5000):
            yield from super().batches(block)
            yield {("erp", "contact"): [("CT999999", "person", "A", "", "B", "", "a@b.dk", "", "", "C99999")]}

    monkeypatch.setattr(seeding, "Dataset", Broken)
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await seeding.seed(s, erp=True, crm=True, customers=50, seed=1, overlap=0.3)
    assert await counts(s) == {key: 0 for key in COLUMNS}
    assert {system: await catalog(s, system) for system in SYSTEMS} == before


async def test_seeding_a_database_without_the_demo_schema_says_to_run_setup(databases: Settings):
    s = databases
    conn = await admin(s)
    try:
        for name in (s.erp_database, s.crm_database):
            await conn.execute(f"CREATE DATABASE {quote_ident(name)}")
    finally:
        await conn.close()
    with pytest.raises(ConfigError, match=r"erp database has no demo table currency: run `cdc demo setup` first"):
        await seeding.seed(s, erp=True, crm=False, customers=10, seed=1, overlap=0.3)
