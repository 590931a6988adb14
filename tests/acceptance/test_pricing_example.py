"""examples/pricing end to end through the command line: tables keyed by several columns (an ERP price line by item,
currency and minimum quantity <-> a CRM price list item with a generated key; a unit of measure by item and code on
both sides; a barcode naming its unit by the unit's two key columns, a lookup to a composite key).

Dry run and full sync with data on both sides, verify in sync, live changes both ways through `cdc capture` and
`cdc worker` (creations, updates, deletes), and the coupling commands given a composite key as its text."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from cdc.settings import Settings
from tests.acceptance.orchestrator_env import OrchestratorEnv, counters, jobs_by, until
from tests.acceptance.test_purchasing_example import start_pipeline

pytestmark = pytest.mark.acceptance

PRICING = Path(__file__).resolve().parents[2] / "examples" / "pricing"
ITEMS = ["1000", "1001", "2000, \"A\"", "3000"]  # a comma and quotes inside a key column
QUANTITIES = [Decimal(0), Decimal("2.5"), Decimal(10)]
ERP_LINES = len(ITEMS) * 2 * len(QUANTITIES)  # per item: EUR and NOK at every quantity
CRM_LINES = 4  # USD lines the ERP does not have
ERP_UNITS, CRM_UNITS = len(ITEMS) * 2, 2
ERP_BARCODES, CRM_BARCODES = len(ITEMS) + 1, 1  # one per item's PCS, one naming no unit; the CRM's names its PAL


def key(*parts: str) -> str:
    return json.dumps(list(parts), separators=(",", ":"))


@pytest.fixture(scope="module")
async def env(settings: Settings) -> AsyncIterator[OrchestratorEnv]:
    schemas = {"erp": (PRICING / "erp.sql").read_text(), "crm": (PRICING / "crm.sql").read_text()}
    environment = await OrchestratorEnv(settings, "pricing", schemas=schemas,
                                        mapping_file=PRICING / "mappings.yaml").create()
    try:
        await seed(environment)
        yield environment
    finally:
        await environment.drop()


async def seed(env: OrchestratorEnv) -> None:
    erp, crm = await env.connect("erp"), await env.connect("crm")
    try:
        for item in ITEMS:
            for currency in ("EUR", "NOK"):
                for n, quantity in enumerate(QUANTITIES):
                    await erp.execute("INSERT INTO price_line(item_no, currency, min_quantity, unit_price, "
                                      "starting_date) VALUES ($1, $2, $3, $4, '2024-01-01')",
                                      item, currency, quantity, Decimal(100 - n))
            for code in ("PCS", "BOX"):
                await erp.execute("INSERT INTO item_unit(item_no, code, qty_per_unit) VALUES ($1, $2, $3)",
                                  item, code, 1 if code == "PCS" else 12)
            await erp.execute("INSERT INTO item_barcode(barcode, item_no, unit_code) VALUES ($1, $2, 'PCS')",
                              f"B{ITEMS.index(item)}", item)
        await erp.execute("INSERT INTO item_barcode(barcode) VALUES ('B-NONE')")
        for n in range(CRM_LINES):
            await crm.execute("INSERT INTO productpricelevel(productnumber, currencycode, quantity, amount) "
                              "VALUES ($1, 'USD', $2, 50)", ITEMS[n % len(ITEMS)], Decimal(n))
        await crm.execute("INSERT INTO uomitem(productnumber, unitname, quantity) VALUES "
                          "('1000', 'PAL', 480), ('4000', 'PCS', 1)")
        await crm.execute("INSERT INTO productbarcode(barcode, productnumber, unitname) "
                          "VALUES ('C-PAL', '1000', 'PAL')")
    finally:
        await erp.close()
        await crm.close()


async def test_1_the_dry_run_predicts_every_creation(env: OrchestratorEnv) -> None:
    report = env.cdc_json("full-sync", "--dry-run")
    predicted = {(p["mapping"], p["direction"]): p for p in report["predictions"]}
    assert predicted[("PRICE", "to_crm")]["created"] == ERP_LINES
    assert predicted[("PRICE", "to_erp")]["created"] == CRM_LINES
    assert predicted[("UNIT", "to_crm")]["created"] == ERP_UNITS
    assert predicted[("UNIT", "to_erp")]["created"] == CRM_UNITS
    assert predicted[("BARCODE", "to_crm")]["created"] == ERP_BARCODES
    assert predicted[("BARCODE", "to_erp")]["created"] == CRM_BARCODES
    assert await env.value("crm", "SELECT count(*) FROM productpricelevel") == CRM_LINES, "a prediction writes nothing"


async def test_2_a_full_sync_with_data_on_both_sides(env: OrchestratorEnv) -> None:
    done = env.cdc("full-sync", "--yes", "--json", timeout=600)
    assert done.returncode == 0, done.stderr
    run = json.loads(done.stdout)
    jobs = {k: counters(job) for k, job in jobs_by(env.cdc_json("jobs", "--limit", "50"),
                                                    run_id=run["run_id"]).items()}
    assert jobs[("PRICE", "to_crm")] == {"inserted": ERP_LINES}
    assert jobs[("PRICE", "to_erp")] == {"inserted": CRM_LINES, "unchanged": ERP_LINES}
    assert jobs[("UNIT", "to_crm")] == {"inserted": ERP_UNITS}
    assert jobs[("UNIT", "to_erp")] == {"inserted": CRM_UNITS, "unchanged": ERP_UNITS}
    assert jobs[("BARCODE", "to_crm")] == {"inserted": ERP_BARCODES}
    assert jobs[("BARCODE", "to_erp")] == {"inserted": CRM_BARCODES, "unchanged": ERP_BARCODES}

    # couplings name composite records by their key text, in primary-key order, numbers canonical
    erp_keys = {r["erp_key"] for r in await env.rows("state", "SELECT erp_key FROM cdc.couplings "
                                                              "WHERE mapping = 'PRICE'")}
    assert key('2000, "A"', "NOK", "2.5") in erp_keys and key("1000", "EUR", "0") in erp_keys
    assert len(erp_keys) == ERP_LINES + CRM_LINES
    line = await env.rows("erp", "SELECT * FROM price_line WHERE currency = 'USD' AND item_no = $1", ITEMS[1])
    assert [(r["min_quantity"], r["unit_price"]) for r in line] == [(Decimal("1.000"), Decimal("50.00"))]
    assert await env.value("crm", "SELECT count(*) FROM productpricelevel") == ERP_LINES + CRM_LINES
    assert await env.value("crm", "SELECT count(*) FROM uomitem") == ERP_UNITS + CRM_UNITS
    assert await env.value("erp", "SELECT qty_per_unit FROM item_unit WHERE item_no = '4000' AND code = 'PCS'") == 1
    # a barcode's unit: the key text of its two columns, looked up in UNIT's couplings, read back into two columns
    assert [tuple(r) for r in await env.rows("crm", "SELECT productnumber, unitname FROM productbarcode "
                                                    "WHERE barcode IN ('B2', 'B-NONE') ORDER BY barcode")] == [
        (None, None), (ITEMS[2], "PCS")]
    assert [tuple(r) for r in await env.rows("erp", "SELECT item_no, unit_code FROM item_barcode "
                                                    "WHERE barcode = 'C-PAL'")] == [("1000", "PAL")]

    report = env.cdc_json("verify")
    assert not report["diverges"], report
    assert {m["mapping"]: m["counts"]["pairs"] for m in report["mappings"]} == {
        "PRICE": ERP_LINES + CRM_LINES, "UNIT": ERP_UNITS + CRM_UNITS, "BARCODE": ERP_BARCODES + CRM_BARCODES}


async def test_3_live_changes_both_ways(env: OrchestratorEnv) -> None:
    await start_pipeline(env)
    erp, crm = await env.connect("erp"), await env.connect("crm")
    try:
        await erp.execute("UPDATE price_line SET unit_price = 42 WHERE item_no = $1 AND currency = 'NOK' "
                          "AND min_quantity = 2.5", ITEMS[2])
        partner = await coupled(env, "PRICE", "erp", key(ITEMS[2], "NOK", "2.5"))
        await until(lambda: env.value("crm", "SELECT amount = 42 FROM productpricelevel "
                                             "WHERE productpricelevelid = $1", uuid.UUID(partner)),
                    what="the ERP's price in the CRM")
        await crm.execute("UPDATE productpricelevel SET amount = 41.5 WHERE productpricelevelid = $1",
                          uuid.UUID(partner))
        await until(lambda: env.value("erp", "SELECT unit_price = 41.5 FROM price_line WHERE item_no = $1 AND "
                                             "currency = 'NOK' AND min_quantity = 2.5", ITEMS[2]),
                    what="the CRM's price in the ERP")

        fresh = await crm.fetchval("INSERT INTO productpricelevel(productnumber, currencycode, quantity, amount) "
                                   "VALUES ('5000', 'SEK', 25, 7) RETURNING productpricelevelid")
        assert await coupled(env, "PRICE", "crm", str(fresh)) == key("5000", "SEK", "25")
        await erp.execute("INSERT INTO item_unit(item_no, code, qty_per_unit) VALUES ('5000', 'PCS', 1)")
        assert await coupled(env, "UNIT", "erp", key("5000", "PCS")) == key("5000", "PCS")

        await erp.execute("UPDATE item_barcode SET unit_code = 'BOX' WHERE barcode = 'B2'")
        await until(lambda: env.value("crm", "SELECT unitname = 'BOX' FROM productbarcode WHERE barcode = 'B2'"),
                    what="the ERP barcode's new unit in the CRM")
        await crm.execute("UPDATE productbarcode SET productnumber = '4000', unitname = 'PCS' WHERE barcode = 'C-PAL'")
        await until(lambda: env.value("erp", "SELECT (item_no, unit_code) = ('4000', 'PCS') FROM item_barcode "
                                             "WHERE barcode = 'C-PAL'"), what="the CRM barcode's new unit in the ERP")

        await erp.execute("DELETE FROM price_line WHERE item_no = '5000'")
        await until(lambda: env.value("crm", "SELECT count(*) = 0 FROM productpricelevel "
                                             "WHERE productpricelevelid = $1", fresh), what="the CRM item deleted")
        await crm.execute("DELETE FROM uomitem WHERE productnumber = '5000'")
        await until(lambda: env.value("erp", "SELECT count(*) = 0 FROM item_unit WHERE item_no = '5000'"),
                    what="the ERP unit deleted")
    finally:
        await erp.close()
        await crm.close()


async def test_4_coupling_commands_take_a_composite_key_as_its_text(env: OrchestratorEnv) -> None:
    line = key("1000", "EUR", "10.000")  # typed with the column's scale: the same record as "10"
    partner = await env.value("state", "SELECT crm_key FROM cdc.couplings WHERE mapping = 'PRICE' AND erp_key = $1",
                              key("1000", "EUR", "10"))
    done = env.cdc("uncouple", "-m", "PRICE", "--erp", line)
    assert done.returncode == 0, done.stderr
    assert key("1000", "EUR", "10") in done.stdout
    done = env.cdc("couple", line, partner, "-m", "PRICE")
    assert done.returncode == 0, done.stderr
    assert await env.value("state", "SELECT erp_key FROM cdc.couplings WHERE mapping = 'PRICE' AND crm_key = $1",
                           partner) == key("1000", "EUR", "10")
    wrong = env.cdc("uncouple", "-m", "PRICE", "--erp", "1000")
    assert wrong.returncode != 0 and "is not a key of ERP table price_line" in wrong.stderr + wrong.stdout

    report = env.cdc_json("verify")
    assert not report["diverges"], report


async def coupled(env: OrchestratorEnv, mapping: str, system: str, k: str) -> str:
    partner = "crm_key" if system == "erp" else "erp_key"
    return await until(lambda: env.value("state", f"SELECT {partner} FROM cdc.couplings WHERE mapping = $1 "
                                                  f"AND {system}_key = $2", mapping, k),
                       what=f"{mapping} {system} {k} coupled")
