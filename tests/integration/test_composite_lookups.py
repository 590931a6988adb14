"""A lookup to a composite key through real capture and a real worker: an ERP barcode names its unit of measure by
the unit's two key columns (item, code), a CRM barcode by the unit's UUID. Both directions, a change of unit on
either side, a barcode waiting for its unit to be coupled, and verify."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cdc.mapping.load import load_mapping_file
from cdc.orchestrator.verify import verify
from cdc.settings import Settings
from tests.integration.sync_harness import LiveSync
from tests.integration.test_composite_keys import coupled, key

pytestmark = pytest.mark.asyncio(loop_scope="session")

TOUCH = """
CREATE OR REPLACE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.{column} := clock_timestamp(); RETURN NEW; END $$;
DO $$ DECLARE t text; BEGIN FOREACH t IN ARRAY ARRAY[{tables}] LOOP
  EXECUTE format('CREATE TRIGGER %I_touch BEFORE INSERT OR UPDATE ON %I FOR EACH ROW EXECUTE FUNCTION touch()', t, t);
END LOOP; END $$;
"""
ERP = """
CREATE TABLE item_unit (item_no varchar(20) NOT NULL, code varchar(10) NOT NULL, qty_per_unit numeric(18,3),
                        modified_at timestamptz NOT NULL DEFAULT clock_timestamp(), PRIMARY KEY (item_no, code));
CREATE TABLE item_barcode (barcode varchar(20) PRIMARY KEY, item_no varchar(20), unit_code varchar(10),
                           modified_at timestamptz NOT NULL DEFAULT clock_timestamp());
""" + TOUCH.format(column="modified_at", tables="'item_unit', 'item_barcode'")
CRM = """
CREATE TABLE uom (uomid uuid PRIMARY KEY DEFAULT gen_random_uuid(), productnumber varchar(20) NOT NULL DEFAULT '',
                  unitname varchar(10) NOT NULL DEFAULT '', quantity numeric(18,3),
                  modifiedon timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE TABLE productbarcode (productbarcodeid uuid PRIMARY KEY DEFAULT gen_random_uuid(),
                             barcode varchar(20) NOT NULL DEFAULT '', uomid uuid,
                             modifiedon timestamptz NOT NULL DEFAULT clock_timestamp());
""" + TOUCH.format(column="modifiedon", tables="'uom', 'productbarcode'")
MAPPINGS = """\
version: 1
mappings:
  - name: UNIT
    sync_only_coupled: false
    erp: {table: item_unit, key: [item_no, code], modified_on: modified_at}
    crm: {table: uom, key: uomid, modified_on: modifiedon}
    fields:
      - {erp: item_no, crm: productnumber}
      - {erp: code, crm: unitname}
      - {erp: qty_per_unit, crm: quantity}
  - name: BARCODE
    sync_only_coupled: false
    erp: {table: item_barcode, key: barcode, modified_on: modified_at, new_key: {strategy: field, field: barcode}}
    crm: {table: productbarcode, key: productbarcodeid, modified_on: modifiedon}
    fields:
      - {erp: barcode, crm: barcode}
      - {erp: [item_no, unit_code], crm: uomid, lookup: UNIT}
"""


@pytest.fixture(scope="module")
async def live(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LiveSync]:
    path: Path = tmp_path_factory.mktemp("lookups") / "mappings.yaml"
    path.write_text(MAPPINGS)
    async with LiveSync(settings, path, {"erp": ERP, "crm": CRM}) as sync:
        await sync.start()
        yield sync


async def test_an_erp_barcode_names_its_unit_in_the_crm_by_the_units_uuid(live: LiveSync) -> None:
    await live.erp.execute("INSERT INTO item_unit(item_no, code, qty_per_unit) VALUES ('1000', 'PCS', 1), "
                           "('1000', 'BOX', 12)")
    pcs = uuid.UUID((await coupled(live, "UNIT", "erp", key("1000", "PCS")))["crm_key"])
    box = uuid.UUID((await coupled(live, "UNIT", "erp", key("1000", "BOX")))["crm_key"])
    await live.erp.execute("INSERT INTO item_barcode(barcode, item_no, unit_code) VALUES ('400638133393', '1000', "
                           "'PCS')")
    crm_id = uuid.UUID((await coupled(live, "BARCODE", "erp", "400638133393"))["crm_key"])
    assert await live.crm.fetchval("SELECT uomid FROM productbarcode WHERE productbarcodeid = $1", crm_id) == pcs

    await live.erp.execute("UPDATE item_barcode SET unit_code = 'BOX' WHERE barcode = '400638133393'")
    await live.until(lambda: live.crm.fetchval("SELECT uomid = $2 FROM productbarcode WHERE productbarcodeid = $1",
                                               crm_id, box), what="the ERP's change of unit in the CRM")

    # from the CRM: its UUID read back into both ERP columns
    await live.crm.execute("UPDATE productbarcode SET uomid = $2 WHERE productbarcodeid = $1", crm_id, pcs)
    await live.until(lambda: live.erp.fetchval("SELECT (item_no, unit_code) = ('1000', 'PCS') FROM item_barcode "
                                               "WHERE barcode = '400638133393'"), what="the CRM's unit in the ERP")


async def test_a_crm_barcode_becomes_an_erp_barcode_holding_the_units_key_columns(live: LiveSync) -> None:
    kg = await live.crm.fetchval("INSERT INTO uom(productnumber, unitname, quantity) VALUES ('2000, \"A\"', 'KG', 1) "
                                 "RETURNING uomid")
    assert (await coupled(live, "UNIT", "crm", str(kg)))["erp_key"] == key('2000, "A"', "KG")
    crm_id = await live.crm.fetchval("INSERT INTO productbarcode(barcode, uomid) VALUES ('590123412345', $1) "
                                     "RETURNING productbarcodeid", kg)
    await coupled(live, "BARCODE", "crm", str(crm_id))
    row = await live.erp.fetchrow("SELECT item_no, unit_code FROM item_barcode WHERE barcode = '590123412345'")
    assert tuple(row) == ('2000, "A"', "KG"), "separators and quotes inside a key column"

    await live.crm.execute("UPDATE productbarcode SET uomid = NULL WHERE productbarcodeid = $1", crm_id)
    await live.until(lambda: live.erp.fetchval("SELECT item_no IS NULL AND unit_code IS NULL FROM item_barcode "
                                               "WHERE barcode = '590123412345'"), what="no unit: both columns null")


async def test_a_barcode_waits_for_its_unit_to_be_coupled(live: LiveSync) -> None:
    await live.erp.execute("INSERT INTO item_barcode(barcode, item_no, unit_code) VALUES ('761234567890', '3000', "
                           "'PAL')")
    await live.until(lambda: live.state.fetchval("SELECT count(*) > 0 FROM cdc.parked_events"),
                     what="the barcode parked for its unit")
    assert await live.coupling("BARCODE", "erp", "761234567890") is None
    await live.erp.execute("INSERT INTO item_unit(item_no, code, qty_per_unit) VALUES ('3000', 'PAL', 480)")
    pal = uuid.UUID((await coupled(live, "UNIT", "erp", key("3000", "PAL")))["crm_key"])
    crm_id = uuid.UUID((await coupled(live, "BARCODE", "erp", "761234567890"))["crm_key"])
    assert await live.crm.fetchval("SELECT uomid FROM productbarcode WHERE productbarcodeid = $1", crm_id) == pal


async def test_verify_finds_the_pairs_in_sync(live: LiveSync) -> None:
    await live.captured()
    await live.until(lambda: _settled(live), what="no change in flight")
    report = await verify(live.settings, load_mapping_file(live.settings.mapping_file))
    assert not report.diverges, report.as_json()
    assert {c.mapping: c.pairs for c in report.checks} == {"UNIT": 4, "BARCODE": 3}


async def _settled(live: LiveSync) -> bool:
    return not await live.state.fetchval("SELECT count(*) FROM cdc.parked_events")
