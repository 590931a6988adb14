"""Composite keys through real capture and a real worker, on examples/pricing: an ERP price line keyed by item,
currency and minimum quantity <-> a CRM price list item with a generated key (PRICE), and a unit of measure keyed
by two columns on both sides (UNIT). Creation, updates both ways, deletes, the coupling state, verify, record
lookup and a full sync over such a pair."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from cdc.catalog import read_tables
from cdc.mapping.load import load_mapping_file
from cdc.orchestrator.verify import verify
from cdc.settings import Settings
from consumers.appliers.writer import TableWrite, _set_statement, _statement, apply
from consumers.decisions.outcome import Write
from tests.integration.dashboard_fixtures import app_client
from tests.integration.mapping_fixtures import scratch_database
from tests.integration.sync_harness import LiveSync

pytestmark = pytest.mark.asyncio(loop_scope="session")

PRICING = Path(__file__).resolve().parents[2] / "examples" / "pricing"


def pricing_schemas() -> dict[str, str]:
    return {"erp": (PRICING / "erp.sql").read_text(), "crm": (PRICING / "crm.sql").read_text()}


@pytest.fixture(scope="module")
async def live(settings: Settings) -> AsyncIterator[LiveSync]:
    async with LiveSync(settings, PRICING / "mappings.yaml", pricing_schemas()) as sync:
        await sync.start()
        yield sync


def key(*parts: str) -> str:
    return json.dumps(list(parts), separators=(",", ":"))


async def coupled(live: LiveSync, mapping: str, system: str, k: str) -> Any:
    return await live.until(lambda: live.coupling(mapping, system, k), timeout=30,
                            what=f"{mapping} {system} {k} coupled")


async def test_an_erp_price_line_reaches_the_crm_and_changes_flow_both_ways(live: LiveSync) -> None:
    await live.erp.execute("INSERT INTO price_line(item_no, currency, min_quantity, unit_price, starting_date) "
                           "VALUES ('1000', 'EUR', 10, 9.50, '2024-05-01')")
    erp_key = key("1000", "EUR", "10")
    coupling = await coupled(live, "PRICE", "erp", erp_key)
    crm_id = uuid.UUID(coupling["crm_key"])
    row = await live.crm.fetchrow("SELECT * FROM productpricelevel WHERE productpricelevelid = $1", crm_id)
    assert (row["productnumber"], row["currencycode"], row["quantity"], row["amount"]) == (
        "1000", "EUR", Decimal("10.000"), Decimal("9.50"))

    await live.erp.execute("UPDATE price_line SET unit_price = 8.75 WHERE item_no = '1000' AND currency = 'EUR' "
                           "AND min_quantity = 10")
    await live.until(lambda: live.crm.fetchval("SELECT amount = 8.75 FROM productpricelevel "
                                               "WHERE productpricelevelid = $1", crm_id), what="ERP price in the CRM")

    await live.crm.execute("UPDATE productpricelevel SET amount = 7.25, validfrom = '2024-06-01' "
                           "WHERE productpricelevelid = $1", crm_id)
    await live.until(lambda: live.erp.fetchval(
        "SELECT unit_price = 7.25 AND starting_date = '2024-06-01' FROM price_line "
        "WHERE item_no = '1000' AND currency = 'EUR' AND min_quantity = 10"), what="the CRM's price in the ERP")

    # another line of the same item and currency: another record
    await live.erp.execute("INSERT INTO price_line(item_no, currency, min_quantity, unit_price) "
                           "VALUES ('1000', 'EUR', 100, 6)")
    other = await coupled(live, "PRICE", "erp", key("1000", "EUR", "100"))
    assert other["crm_key"] != coupling["crm_key"]

    await live.erp.execute("DELETE FROM price_line WHERE item_no = '1000' AND currency = 'EUR' AND min_quantity = 100")
    await live.until(lambda: live.crm.fetchval("SELECT count(*) = 0 FROM productpricelevel "
                                               "WHERE productpricelevelid = $1", uuid.UUID(other["crm_key"])),
                     what="the deleted line gone from the CRM")
    await live.until(lambda: _no_coupling(live, "PRICE", "erp", key("1000", "EUR", "100")),
                     what="its coupling gone")
    assert await live.erp.fetchval("SELECT count(*) FROM price_line WHERE item_no = '1000'") == 1


async def test_a_crm_price_item_becomes_an_erp_line_keyed_by_the_columns_it_carries(live: LiveSync) -> None:
    crm_id = await live.crm.fetchval(
        "INSERT INTO productpricelevel(productnumber, currencycode, quantity, amount) "
        "VALUES ('2000, \"A\"', 'USD', 2.5, 12) RETURNING productpricelevelid")
    coupling = await coupled(live, "PRICE", "crm", str(crm_id))
    assert coupling["erp_key"] == key('2000, "A"', "USD", "2.5"), "separators and quotes inside a key column"
    line = await live.erp.fetchrow("SELECT * FROM price_line WHERE item_no = '2000, \"A\"'")
    assert (line["currency"], line["min_quantity"], line["unit_price"]) == ("USD", Decimal("2.500"), Decimal("12.00"))

    await live.crm.execute("UPDATE productpricelevel SET amount = 11 WHERE productpricelevelid = $1", crm_id)
    await live.until(lambda: live.erp.fetchval("SELECT unit_price = 11 FROM price_line WHERE item_no = '2000, \"A\"'"),
                     what="the CRM's change in the ERP line")
    await live.crm.execute("DELETE FROM productpricelevel WHERE productpricelevelid = $1", crm_id)
    await live.until(lambda: live.erp.fetchval("SELECT count(*) = 0 FROM price_line WHERE item_no = '2000, \"A\"'"),
                     what="the ERP line deleted with its CRM item")


async def test_a_unit_keyed_by_two_columns_on_both_sides(live: LiveSync) -> None:
    await live.erp.execute("INSERT INTO item_unit(item_no, code, qty_per_unit) VALUES ('1000', 'BOX', 12), "
                           "('1000', 'PCS', 1), ('1001', 'BOX', 6)")
    for code in ("BOX", "PCS"):
        c = await coupled(live, "UNIT", "erp", key("1000", code))
        assert c["crm_key"] == key("1000", code)
    await coupled(live, "UNIT", "erp", key("1001", "BOX"))

    # a set-based update of several records of one shape, and one from the CRM
    await live.erp.execute("UPDATE item_unit SET qty_per_unit = qty_per_unit * 2 WHERE code = 'BOX'")
    await live.until(lambda: live.crm.fetchval("SELECT array_agg(quantity ORDER BY productnumber) = "
                                               "'{24.000,12.000}'::numeric[] FROM uomitem WHERE unitname = 'BOX'"),
                     what="both boxes doubled in the CRM")
    await live.crm.execute("UPDATE uomitem SET quantity = 10 WHERE productnumber = '1000' AND unitname = 'PCS'")
    await live.until(lambda: live.erp.fetchval("SELECT qty_per_unit = 10 FROM item_unit "
                                               "WHERE item_no = '1000' AND code = 'PCS'"), what="PCS in the ERP")

    await live.crm.execute("INSERT INTO uomitem(productnumber, unitname, quantity) VALUES ('1001', 'PAL', 480)")
    c = await coupled(live, "UNIT", "crm", key("1001", "PAL"))
    assert c["erp_key"] == key("1001", "PAL")
    assert await live.erp.fetchval("SELECT qty_per_unit FROM item_unit WHERE item_no = '1001' AND code = 'PAL'") \
        == Decimal("480.000")

    await live.erp.execute("DELETE FROM item_unit WHERE code = 'BOX'")
    await live.until(lambda: live.crm.fetchval("SELECT count(*) = 0 FROM uomitem WHERE unitname = 'BOX'"),
                     what="both boxes deleted in the CRM")


async def test_verify_and_record_lookup_name_records_by_their_key_text(live: LiveSync) -> None:
    await live.captured()
    await live.until(lambda: _settled(live), what="no change in flight")
    report = await verify(live.settings, load_mapping_file(live.settings.mapping_file))
    assert not report.diverges, report.as_json()
    assert {c.mapping: c.pairs for c in report.checks} == {"PRICE": 1, "UNIT": 2, "BARCODE": 0}
    crm_key = (await live.coupling("PRICE", "erp", key("1000", "EUR", "10")))["crm_key"]
    async with app_client(live.settings) as client:
        page = (await client.get("/record", params={"system": "erp", "key": key("1000", "EUR", "10")})).text
        assert 'data-mapping="PRICE"' in page and crm_key in page and "7.25" in page, page
        unit = (await client.get("/record", params={"system": "crm", "key": key("1000", "PCS"),
                                                    "mapping": "UNIT"})).text
        assert 'data-mapping="UNIT"' in unit and "10.000" in unit
        wrong = (await client.get("/record", params={"system": "erp", "key": "1000", "mapping": "PRICE"})).text
        assert "is not a key of 3 columns" in wrong


async def test_a_full_sync_over_composite_keys_with_data_on_both_sides(live: LiveSync) -> None:
    await live.stop_worker()
    # written while no worker runs: the full sync's replays and the captured changes meet in one worker
    await live.erp.execute("INSERT INTO price_line(item_no, currency, min_quantity, unit_price) VALUES "
                           "('3000', 'EUR', 0, 1), ('3000', 'EUR', 5, 0.9), ('3000', 'NOK', 0, 11)")
    await live.crm.execute("INSERT INTO uomitem(productnumber, unitname, quantity) VALUES ('3000', 'KG', 1)")
    await live.start_worker()
    done = await live.cdc("full-sync", "--yes", "--json", timeout=300)
    assert done.returncode == 0, done.stderr
    for erp_key in (key("3000", "EUR", "0"), key("3000", "EUR", "5"), key("3000", "NOK", "0")):
        await coupled(live, "PRICE", "erp", erp_key)
    assert await live.crm.fetchval("SELECT count(*) FROM productpricelevel WHERE productnumber = '3000'") == 3
    await coupled(live, "UNIT", "crm", key("3000", "KG"))
    assert await live.erp.fetchval("SELECT count(*) FROM item_unit WHERE item_no = '3000' AND code = 'KG'") == 1
    report = await verify(live.settings, load_mapping_file(live.settings.mapping_file))
    assert not report.diverges, report.as_json()


async def test_a_value_carried_into_a_key_column_does_not_re_key_the_record(live: LiveSync) -> None:
    crm_key = (await live.coupling("PRICE", "erp", key("1000", "EUR", "10")))["crm_key"]
    before = await live.state.fetchval("SELECT count(*) FROM cdc.record_log WHERE mapping = 'PRICE' AND key = $1",
                                       crm_key)
    await live.crm.execute("UPDATE productpricelevel SET quantity = 20 WHERE productpricelevelid = $1",
                           uuid.UUID(crm_key))
    await live.until(lambda: _logged_since(live, crm_key, before), what="the CRM change decided")
    assert await live.erp.fetchval("SELECT count(*) FROM price_line WHERE item_no = '1000' AND currency = 'EUR' "
                                   "AND min_quantity = 10") == 1, "the ERP line keeps its key"
    assert (await live.coupling("PRICE", "crm", crm_key))["erp_key"] == key("1000", "EUR", "10")
    report = await verify(live.settings, load_mapping_file(live.settings.mapping_file), only="PRICE")
    [check] = report.checks
    assert [d.erp_key for d in check.differences] == [key("1000", "EUR", "10")], check
    assert report.diverges


async def _logged_since(live: LiveSync, k: str, before: int) -> bool:
    return await live.state.fetchval("SELECT count(*) FROM cdc.record_log WHERE mapping = 'PRICE' AND key = $1",
                                     k) > before


async def _no_coupling(live: LiveSync, mapping: str, system: str, k: str) -> bool:
    return await live.coupling(mapping, system, k) is None


async def _settled(live: LiveSync) -> bool:
    return not await live.state.fetchval("SELECT count(*) FROM cdc.parked_events")


async def test_set_based_writes_join_on_every_key_column(settings: Settings) -> None:
    """Several writes of one shape under a composite key: one statement over typed arrays, joined column by
    column; and one record per statement when the batch fails."""
    async with scratch_database(settings, "composite", PRICING / "erp.sql") as dsn:
        conn = await asyncpg.connect(dsn)
        try:
            table = (await read_tables(conn, "public", ["price_line"]))["price_line"]
            keys = [key("A", "EUR", "0"), key('B,"]', "EUR", "2.5"), key("A", "NOK", "10")]

            def writes(kind: str, values: dict[str, Any]) -> list[TableWrite]:
                return [TableWrite(table, Write("erp", kind, k, dict(values)), n)  # type: ignore[arg-type]
                        for n, k in enumerate(keys)]

            inserts = writes("insert", {"unit_price": "1.50"})
            assert _set_statement(inserts[0], tuple(_statement(inserts[0])[2]), [()] * 3) is not None
            assert await apply(conn, inserts) == {}
            updates = writes("update", {"unit_price": "2"})
            update_sql = _set_statement(updates[0], _statement(updates[0])[2], [_statement(u)[1] for u in updates])
            assert update_sql is not None and "unnest" in update_sql
            assert await apply(conn, updates) == {}
            rows = await conn.fetch("SELECT item_no, currency, min_quantity, unit_price FROM price_line "
                                    "ORDER BY item_no, currency")
            assert [tuple(r) for r in rows] == [("A", "EUR", Decimal("0.000"), Decimal("2.00")),
                                                ("A", "NOK", Decimal("10.000"), Decimal("2.00")),
                                                ('B,"]', "EUR", Decimal("2.500"), Decimal("2.00"))]
            # a key's own values are no update; a delete of two records leaves the third
            assert await apply(conn, [TableWrite(table, Write("erp", "update", keys[0], {"currency": "EUR"}), 0)]) \
                == {}
            assert await apply(conn, writes("delete", {})[:2]) == {}
            assert [tuple(r) for r in await conn.fetch("SELECT item_no, currency FROM price_line")] == [("A", "NOK")]
            # one bad record in a batch fails alone
            batch = [TableWrite(table, Write("erp", "insert", key("C", "EUR", "1"), {"unit_price": "3"}), 0),
                     TableWrite(table, Write("erp", "insert", keys[2], {"unit_price": "3"}), 1)]
            refused = await apply(conn, batch)
            assert list(refused) == [1] and "a record with that key exists" in refused[1].message
            assert await conn.fetchval("SELECT count(*) FROM price_line WHERE item_no = 'C'") == 1
        finally:
            await conn.close()
