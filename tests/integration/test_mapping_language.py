"""The mapping language through real capture and a real worker, on a schema pair that is not the demo's
(examples/purchasing: vendors numbered by the ERP's own series ↔ CRM suppliers): keys from a number series
(also across a crash between allocation and write), LIKE filters, what a lookup that is not coupled does per field,
which values prevail after a match, and normalisation both ways."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import yaml

from cdc.catalog import read_tables
from cdc.mapping.load import load_mapping_file
from cdc.orchestrator.coupling import uncouple
from cdc.orchestrator.verify import verify
from cdc.settings import Settings
from consumers.series import next_keys
from tests.integration.mapping_fixtures import scratch_database
from tests.integration.sync_harness import LiveSync
from tests.integration.test_interrupted_writes import WriteCrash

pytestmark = pytest.mark.asyncio(loop_scope="session")

PURCHASING = Path(__file__).resolve().parents[2] / "examples" / "purchasing"
EUR = "EUR"


def purchasing_mapping(tmp: Path, **per_mapping: dict[str, Any]) -> Path:
    spec = yaml.safe_load((PURCHASING / "mappings.yaml").read_text())
    for m in spec["mappings"]:
        m.update(per_mapping.get(m["name"], {}))
    path = tmp / f"purchasing-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def purchasing_schemas() -> dict[str, str]:
    return {"erp": (PURCHASING / "erp.sql").read_text(), "crm": (PURCHASING / "crm.sql").read_text()}


async def started(live: LiveSync) -> LiveSync:
    await live.start()
    await live.erp.execute("INSERT INTO currency(code, description) VALUES ($1, 'Euro')", EUR)
    await coupled(live, "CURRENCY", "erp", EUR)
    return live


@pytest.fixture(scope="module")
async def live(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LiveSync]:
    path = purchasing_mapping(tmp_path_factory.mktemp("purchasing"))
    async with LiveSync(settings, path, purchasing_schemas()) as sync:
        yield await started(sync)


async def coupled(live: LiveSync, mapping: str, system: str, key: str, what: str = "") -> Any:
    return await live.until(lambda: live.coupling(mapping, system, key), timeout=30,
                            what=what or f"{mapping} {system} {key} coupled")


async def decisions(live: LiveSync, mapping: str, system: str, key: str) -> list[str]:
    rows = await live.state.fetch("SELECT decision FROM cdc.record_log WHERE mapping = $1 AND system = $2 "
                                  "AND key = $3 ORDER BY id", mapping, system, key)
    return [r["decision"] for r in rows]


async def decided(live: LiveSync, mapping: str, system: str, key: str, what: str) -> list[str]:
    return await live.until(lambda: decisions(live, mapping, system, key), timeout=30, what=what)


async def new_supplier(live: LiveSync, name: str, **columns: Any) -> uuid.UUID:
    supplier = uuid.uuid4()
    values = {"supplierid": supplier, "name": name, **columns}
    names = ", ".join(values)
    marks = ", ".join(f"${n}" for n in range(1, len(values) + 1))
    await live.crm.execute(f"INSERT INTO supplier({names}) VALUES ({marks})", *values.values())
    return supplier


async def new_vendor(live: LiveSync, name: str, **columns: Any) -> str:
    values = {"name": name, **columns}
    names = ", ".join(values)
    marks = ", ".join(f"${n}" for n in range(1, len(values) + 1))
    return await live.erp.fetchval(f"INSERT INTO vendor({names}) VALUES ({marks}) RETURNING no", *values.values())


# ---------------------------------------------------------------- 1. keys from the destination's number series

async def test_a_supplier_becomes_the_next_vendor_of_the_series_and_a_number_held_by_hand_is_skipped(
        live: LiveSync) -> None:
    first = await new_vendor(live, "Series One")  # the ERP's own numbering
    await coupled(live, "VENDOR", "erp", first)
    number = int(first[1:])
    typed = f"V{number + 1:06d}"  # someone typed the next number by hand, past the series
    await live.erp.execute("INSERT INTO vendor(no, name) VALUES ($1, 'Typed by hand')", typed)
    await coupled(live, "VENDOR", "erp", typed)

    supplier = await new_supplier(live, "From the CRM", emailaddress1="crm@from.example")
    coupling = await coupled(live, "VENDOR", "crm", str(supplier))
    assert coupling["erp_key"] == f"V{number + 2:06d}", "the number after the one held by hand"
    vendor = await live.erp.fetchrow("SELECT * FROM vendor WHERE no = $1", coupling["erp_key"])
    assert vendor["name"] == "From the CRM"
    assert await live.erp.fetchval("SELECT name FROM vendor WHERE no = $1", typed) == "Typed by hand"
    assert await live.crm.fetchval("SELECT suppliernumber FROM supplier WHERE supplierid = $1",
                                   supplier) == coupling["erp_key"], "the vendor no. written back"
    # and an ERP vendor reaches the CRM with the key the CRM's own default makes
    assert uuid.UUID((await live.coupling("VENDOR", "erp", first))["crm_key"]).version == 4


async def test_a_crash_between_allocation_and_write_creates_one_vendor_with_the_allocated_number(
        live: LiveSync, monkeypatch: pytest.MonkeyPatch) -> None:
    crash = WriteCrash(monkeypatch, lambda tw: tw.write.system == "erp" and tw.write.kind == "insert"
                       and tw.write.values.get("name") == "Crashed Supplies", at=1)
    supplier = await new_supplier(live, "Crashed Supplies")
    coupling = await coupled(live, "VENDOR", "crm", str(supplier), "the supplier coupled after the replay")
    assert crash.calls, "the interruption did not happen"
    number = coupling["erp_key"]
    assert await live.erp.fetchval("SELECT count(*) FROM vendor WHERE name = 'Crashed Supplies'") == 1
    assert await live.erp.fetchval("SELECT no FROM vendor WHERE name = 'Crashed Supplies'") == number
    # the replay took the announced number: the series moved once for this vendor, not twice
    assert f"V{await live.erp.fetchval('SELECT last_value FROM vendor_no'):06d}" == number
    assert await live.crm.fetchval("SELECT suppliernumber FROM supplier WHERE supplierid = $1", supplier) == number
    assert await live.state.fetchval("SELECT count(*) FROM cdc.coupling_intents") == 0


# ---------------------------------------------------------------- 2. LIKE patterns in filters

async def test_like_filters_decide_what_syncs(live: LiveSync) -> None:
    await live.erp.execute("INSERT INTO vendor(no, name) VALUES ('TMP-0001', 'A draft')")
    test_vendor = await new_vendor(live, "TEST supplies (do not use)")
    archived = await new_supplier(live, "ZZ_Archived Ltd")
    kept = await new_supplier(live, "ZZX Tools")  # not ZZ_: the underscore is escaped, not a wildcard
    assert await decided(live, "VENDOR", "erp", "TMP-0001", "the draft decided") == ["ignored"]
    assert await decided(live, "VENDOR", "erp", test_vendor, "the test vendor decided") == ["ignored"]
    assert await decided(live, "VENDOR", "crm", str(archived), "the archived supplier decided") == ["ignored"]
    await coupled(live, "VENDOR", "crm", str(kept))
    assert await live.erp.fetchval("SELECT count(*) FROM vendor WHERE name LIKE 'ZZ_Archived%'") == 0


# ---------------------------------------------------------------- 3. a lookup that is not coupled, per field

async def test_clear_syncs_a_vendor_whose_purchaser_the_crm_does_not_know_and_fills_it_in_later(
        live: LiveSync) -> None:
    await live.erp.execute("INSERT INTO purchaser(code, name, email) VALUES ('P9001', 'Erp Only', 'erp@only.example')")
    vendor = await new_vendor(live, "Owned Elsewhere", purchaser_code="P9001")
    coupling = await coupled(live, "VENDOR", "erp", vendor)
    supplier = uuid.UUID(coupling["crm_key"])
    row = await live.crm.fetchrow("SELECT * FROM supplier WHERE supplierid = $1", supplier)
    assert row["name"] == "Owned Elsewhere" and row["ownerid"] is None
    assert await live.erp.fetchval("SELECT purchaser_code FROM vendor WHERE no = $1", vendor) == "P9001"
    assert await live.state.fetchval("SELECT count(*) FROM cdc.parked_events WHERE source_key = $1", vendor) == 0

    user = uuid.uuid4()  # the purchaser becomes known in the CRM (PURCHASER couples it by e-mail)
    await live.crm.execute("INSERT INTO systemuser(systemuserid, fullname, internalemailaddress) "
                           "VALUES ($1, 'Erp Only', 'erp@only.example')", user)
    await coupled(live, "PURCHASER", "crm", str(user))
    await live.erp.execute("UPDATE vendor SET name = 'Owned Here' WHERE no = $1", vendor)
    await live.until(lambda: live.crm.fetchval("SELECT ownerid = $2 AND name = 'Owned Here' FROM supplier "
                                               "WHERE supplierid = $1", supplier, user),
                     what="the owner written on the vendor's next change")


async def test_fail_fails_a_supplier_whose_currency_is_not_coupled(live: LiveSync) -> None:
    yen = uuid.uuid4()
    await live.crm.execute("INSERT INTO transactioncurrency(transactioncurrencyid, isocurrencycode, currencyname) "
                           "VALUES ($1, 'JPY', 'Yen')", yen)
    supplier = await new_supplier(live, "Tokyo Parts", transactioncurrencyid=yen)
    assert await decided(live, "VENDOR", "crm", str(supplier), "the supplier decided") == ["failed"]
    error = await live.state.fetchrow("SELECT state, message FROM cdc.job_errors WHERE source_key = $1", str(supplier))
    assert error["state"] == "open" and "not coupled in CURRENCY (on_lookup_failure: fail)" in error["message"]
    assert await live.state.fetchval("SELECT count(*) FROM cdc.parked_events WHERE source_key = $1", str(supplier)) == 0
    assert await live.erp.fetchval("SELECT count(*) FROM vendor WHERE name = 'Tokyo Parts'") == 0


async def test_wait_on_a_vendor_outside_the_filter_is_an_error_retried_once_that_vendor_syncs(live: LiveSync) -> None:
    parent = await new_vendor(live, "Parent Holding", blocked=True)  # outside the filter: not synced
    child = await new_vendor(live, "Child Branch", pay_to_vendor_no=parent)
    # its own sync never couples a vendor outside the filter: an error at once, not a silent wait (#13.4)
    assert await decided(live, "VENDOR", "erp", child, "the child decided") == ["failed"]
    await live.erp.execute("UPDATE vendor SET blocked = false WHERE no = $1", parent)
    parent_coupling = await coupled(live, "VENDOR", "erp", parent)
    child_coupling = await coupled(live, "VENDOR", "erp", child, "the parked child retried once its parent synced")
    assert await live.crm.fetchval("SELECT paytosupplierid FROM supplier WHERE supplierid = $1",
                                   uuid.UUID(child_coupling["crm_key"])) == uuid.UUID(parent_coupling["crm_key"])


# ---------------------------------------------------------------- 5. normalisation both ways

async def test_a_value_typed_unnormalised_on_either_side_ends_normalised_on_both(live: LiveSync) -> None:
    vendor = await new_vendor(live, "Normal Trading", country_code="no", email=" Sales@Normal.Example ")
    coupling = await coupled(live, "VENDOR", "erp", vendor)
    supplier = uuid.UUID(coupling["crm_key"])
    row = await live.crm.fetchrow("SELECT address1_country, emailaddress1 FROM supplier WHERE supplierid = $1",
                                  supplier)
    assert (row["address1_country"], row["emailaddress1"]) == ("NO", "sales@normal.example")
    assert await live.erp.fetchval("SELECT country_code FROM vendor WHERE no = $1", vendor) == "NO", \
        "written back to its own side"

    await live.crm.execute("UPDATE supplier SET address1_country = 'de' WHERE supplierid = $1", supplier)
    await live.until(lambda: live.erp.fetchval("SELECT country_code = 'DE' FROM vendor WHERE no = $1", vendor),
                     what="the CRM's code normalised into the ERP")
    await live.until(lambda: live.crm.fetchval("SELECT address1_country = 'DE' FROM supplier WHERE supplierid = $1",
                                               supplier), what="and back into the CRM")
    erp_row = await live.erp.fetchrow("SELECT country_code, email FROM vendor WHERE no = $1", vendor)
    crm_row = await live.crm.fetchrow("SELECT address1_country, emailaddress1 FROM supplier WHERE supplierid = $1",
                                      supplier)
    assert (erp_row["country_code"], erp_row["email"]) == (crm_row["address1_country"], crm_row["emailaddress1"])
    report = await verify(live.settings, load_mapping_file(live.settings.mapping_file), only="VENDOR")
    differing = [d for check in report.checks for d in check.differences if vendor in (d.erp_key,)]
    assert differing == []


# ---------------------------------------------------------------- 4. which values prevail after a match

@pytest.mark.parametrize(("after_match", "erp_name", "crm_name"), [
    ("source", "CRM name", "CRM name"),  # the CRM's insert found the match: its values prevail (the default)
    ("erp", "ERP name", "ERP name"),
    ("none", "ERP name", "CRM name"),
])
async def test_after_a_match_the_mappings_choice_decides_whose_values_both_keep(
        settings: Settings, tmp_path: Path, after_match: str, erp_name: str, crm_name: str) -> None:
    path = purchasing_mapping(tmp_path, VENDOR={"after_match": after_match})
    async with LiveSync(settings, path, purchasing_schemas()) as sync:
        live = await started(sync)
        vendor = await new_vendor(live, "ERP name", email="both@match.example", country_code="FI")
        first = await coupled(live, "VENDOR", "erp", vendor)
        await uncouple(live.settings, load_mapping_file(path), "VENDOR", erp_key=vendor)
        await live.crm.execute("DELETE FROM supplier WHERE supplierid = $1", uuid.UUID(first["crm_key"]))

        supplier = await new_supplier(live, "CRM name", emailaddress1="both@match.example", address1_country="FI")
        again = await coupled(live, "VENDOR", "crm", str(supplier), "the supplier coupled by match")
        assert again["erp_key"] == vendor
        assert await decisions(live, "VENDOR", "crm", str(supplier)) == ["coupled"]
        await live.until(lambda: _names(live, vendor, supplier, erp_name, crm_name), timeout=30,
                         what=f"ERP {erp_name!r}, CRM {crm_name!r}")
        if after_match == "none":  # coupled only: the next change of the name syncs it
            await live.crm.execute("UPDATE supplier SET name = 'Renamed' WHERE supplierid = $1", supplier)
            await live.until(lambda: _names(live, vendor, supplier, "Renamed", "Renamed"), what="the rename synced")


async def _names(live: LiveSync, vendor: str, supplier: uuid.UUID, erp_name: str, crm_name: str) -> bool:
    return (await live.erp.fetchval("SELECT name FROM vendor WHERE no = $1", vendor) == erp_name
            and await live.crm.fetchval("SELECT name FROM supplier WHERE supplierid = $1", supplier) == crm_name)


# ---------------------------------------------------------------- what a number series can be

async def test_series_keys_come_from_whatever_the_key_columns_default_is(settings: Settings) -> None:
    async with scratch_database(settings, "series") as dsn:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("""
                CREATE SEQUENCE doc_no START 41;
                CREATE TABLE no_series (code text PRIMARY KEY, last_no integer NOT NULL);
                INSERT INTO no_series VALUES ('CUST', 7);
                CREATE FUNCTION next_no(series text) RETURNS text LANGUAGE sql AS $$
                    UPDATE no_series SET last_no = last_no + 1 WHERE code = series
                    RETURNING series || '-' || last_no $$;
                CREATE TABLE by_expression (no varchar(20) PRIMARY KEY
                                            DEFAULT 'D' || lpad(nextval('doc_no')::text, 5, '0'));
                CREATE TABLE by_function (no text PRIMARY KEY DEFAULT next_no('CUST'));
                CREATE TABLE by_identity (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY);
                CREATE TABLE by_uuid (id uuid PRIMARY KEY DEFAULT gen_random_uuid());
            """)
            tables = await read_tables(conn, "public", ["by_expression", "by_function", "by_identity", "by_uuid"])
            assert await next_keys(conn, tables["by_expression"], "no", 3) == ["D00041", "D00042", "D00043"]
            assert await next_keys(conn, tables["by_function"], "no", 2) == ["CUST-8", "CUST-9"]
            assert await conn.fetchval("SELECT last_no FROM no_series") == 9, "the function's own bookkeeping"
            assert await next_keys(conn, tables["by_identity"], "id", 2) == ["1", "2"]
            assert len(set(await next_keys(conn, tables["by_uuid"], "id", 3))) == 3
        finally:
            await conn.close()
