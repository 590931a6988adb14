"""Integrity on a schema pair that is not the demo's (examples/catalog): a category tree mapped onto itself, items
with a category lookup, deletes propagated into a CRM whose foreign keys RESTRICT. Through real capture and a
real worker: a creation only ever creates, a hierarchy syncs in one pass, deletes go in an order the destination
accepts, a refused delete keeps its coupling, and dates round-trip exactly."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from cdc.mapping.load import load_mapping_file
from cdc.orchestrator.coupling import uncouple
from cdc.orchestrator.verify import verify
from cdc.settings import Settings
from tests.integration.sync_harness import LiveSync

pytestmark = pytest.mark.asyncio(loop_scope="session")

CATALOG = Path(__file__).resolve().parents[2] / "examples" / "catalog"


def catalog_mapping(tmp: Path, **per_mapping: dict[str, Any]) -> Path:
    spec = yaml.safe_load((CATALOG / "mappings.yaml").read_text())
    for m in spec["mappings"]:
        m.update(per_mapping.get(m["name"], {}))
    path = tmp / f"catalog-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def catalog_schemas() -> dict[str, str]:
    return {"erp": (CATALOG / "erp.sql").read_text(), "crm": (CATALOG / "crm.sql").read_text()}


@pytest.fixture
async def catalog(settings: Settings, tmp_path: Path):
    async with LiveSync(settings, catalog_mapping(tmp_path), catalog_schemas()) as sync:
        await sync.start()
        yield sync


async def coupled(live: LiveSync, mapping: str, system: str, key: str, what: str = "") -> Any:
    return await live.until(lambda: live.coupling(mapping, system, key), timeout=30,
                            what=what or f"{mapping} {system} {key} coupled")


async def product_of(live: LiveSync, item: str) -> Any:
    coupling = await coupled(live, "ITEM", "erp", item)
    return await live.crm.fetchrow("SELECT * FROM product WHERE productid = $1", uuid.UUID(coupling["crm_key"]))


async def decisions(live: LiveSync, mapping: str, system: str, key: str) -> list[str]:
    rows = await live.state.fetch("SELECT decision FROM cdc.record_log WHERE mapping = $1 AND system = $2 "
                                  "AND key = $3 ORDER BY id", mapping, system, key)
    return [r["decision"] for r in rows]


# ---------------------------------------------------------------- 1. a creation only ever creates

async def test_an_uncoupled_item_is_matched_not_overwritten_by_a_creation(catalog: LiveSync) -> None:
    live = catalog
    await live.erp.execute("INSERT INTO item_category(code, description) VALUES ('ROOT', 'Everything')")
    await live.erp.execute("INSERT INTO item(no, description, category_code, unit_price) "
                           "VALUES ('IT000001', 'Bolt M6', 'ROOT', 1.50)")
    product = await product_of(live, "IT000001")
    await uncouple(live.settings, load_mapping_file(live.settings.mapping_file), "ITEM", erp_key="IT000001")
    await live.crm.execute("UPDATE product SET name = 'Bolt M6 zinc' WHERE productid = $1", product["productid"])

    again = await coupled(live, "ITEM", "crm", str(product["productid"]), "the product coupled again")
    assert again["erp_key"] == "IT000001"
    assert await decisions(live, "ITEM", "crm", str(product["productid"])) == ["coupled"], \
        "the existing item is the product's match, not a key to create over"
    item = await live.erp.fetchrow("SELECT * FROM item WHERE no = 'IT000001'")
    assert item["description"] == "Bolt M6 zinc"  # the match syncs the product's change (a decision about it)
    assert await live.erp.fetchval("SELECT count(*) FROM item") == 1
    assert (await live.counters("ITEM", "to_erp"))["i"] == 0


async def test_a_creation_whose_key_is_taken_by_a_record_that_is_no_match_takes_another_key(
        settings: Settings, tmp_path: Path) -> None:
    path = catalog_mapping(tmp_path, ITEM={"match_on": []})
    async with LiveSync(settings, path, catalog_schemas()) as live:
        await live.start()
        await live.erp.execute("INSERT INTO item_category(code, description) VALUES ('ROOT', 'Everything')")
        await coupled(live, "CATEGORY", "erp", "ROOT")
        category = (await live.coupling("CATEGORY", "erp", "ROOT"))["crm_key"]
        await live.erp.execute("INSERT INTO item(no, description, unit_price) VALUES ('IT000002', 'Nut', 0.20)")
        await coupled(live, "ITEM", "erp", "IT000002")
        await uncouple(live.settings, load_mapping_file(path), "ITEM", erp_key="IT000002")
        before = dict(await live.erp.fetchrow("SELECT * FROM item WHERE no = 'IT000002'"))

        product = uuid.uuid4()
        await live.crm.execute("INSERT INTO product(productid, productnumber, name, price, categoryid) "
                               "VALUES ($1, 'IT000002', 'Washer', 9.99, $2)", product, uuid.UUID(category))
        created = await coupled(live, "ITEM", "crm", str(product), "the new product created in the ERP")
        assert created["erp_key"] != "IT000002"
        assert dict(await live.erp.fetchrow("SELECT * FROM item WHERE no = 'IT000002'")) == before
        new = await live.erp.fetchrow("SELECT * FROM item WHERE no = $1", created["erp_key"])
        assert new["description"] == "Washer"


# ---------------------------------------------------------------- 2. hierarchies in one pass (live)

async def test_a_parent_and_its_child_created_in_one_transaction_are_both_synced(catalog: LiveSync) -> None:
    live = catalog
    async with live.erp.transaction():
        await live.erp.execute("INSERT INTO item_category(code, description) VALUES ('TOOLS', 'Tools')")
        await live.erp.execute("INSERT INTO item_category(code, parent_code, description) "
                               "VALUES ('SAWS', 'TOOLS', 'Saws')")
        await live.erp.execute("INSERT INTO item_category(code, parent_code, description) "
                               "VALUES ('HANDSAWS', 'SAWS', 'Hand saws')")
    parent = await coupled(live, "CATEGORY", "erp", "SAWS")
    child = await coupled(live, "CATEGORY", "erp", "HANDSAWS")
    assert await live.crm.fetchval("SELECT parentcategoryid FROM category WHERE categoryid = $1",
                                   uuid.UUID(child["crm_key"])) == uuid.UUID(parent["crm_key"])
    assert await live.state.fetchval("SELECT count(*) FROM cdc.parked_events") == 0
    assert await live.state.fetchval("SELECT count(*) FROM cdc.job_errors WHERE state = 'open'") == 0
    assert "parked" not in await decisions(live, "CATEGORY", "erp", "HANDSAWS"), \
        "a child whose parent is coupled earlier in its own batch does not wait"


# ---------------------------------------------------------------- 3. deletes in an order the destination accepts

async def _tree(live: LiveSync) -> None:
    """ROOT > A > A1, A2; ROOT > B > B1; items in every leaf, all synced."""
    async with live.erp.transaction():
        await live.erp.execute("INSERT INTO item_category(code, description) VALUES ('ROOT', 'All')")
        for code, parent in (("A", "ROOT"), ("B", "ROOT"), ("A1", "A"), ("A2", "A"), ("B1", "B")):
            await live.erp.execute("INSERT INTO item_category(code, parent_code, description) VALUES ($1, $2, $1)",
                                   code, parent)
        for n, category in enumerate(("A1", "A2", "B1", "A1", "B1")):
            await live.erp.execute("INSERT INTO item(no, description, category_code) VALUES ($1, $1, $2)",
                                   f"IT{n:06d}", category)
    for n in range(5):
        await coupled(live, "ITEM", "erp", f"IT{n:06d}")


async def test_one_transaction_moving_items_then_deleting_a_subtree_is_applied_whole(catalog: LiveSync) -> None:
    live = catalog
    await _tree(live)
    assert await live.crm.fetchval("SELECT count(*) FROM category") == 6
    async with live.erp.transaction():
        await live.erp.execute("UPDATE item SET category_code = 'ROOT'")
        await live.erp.execute("DELETE FROM item_category WHERE code IN ('A1', 'A2', 'B1')")
        await live.erp.execute("DELETE FROM item_category WHERE code IN ('A', 'B')")
    await live.until(lambda: live.crm.fetchval("SELECT count(*) = 1 FROM category"), timeout=30,
                     what="the five deleted categories gone from the CRM")
    root = (await live.coupling("CATEGORY", "erp", "ROOT"))["crm_key"]
    assert await live.crm.fetchval("SELECT bool_and(categoryid = $1) FROM product", uuid.UUID(root))
    # the couplings go in the batch's state transaction, which commits just after the CRM's deletes
    await live.until(lambda: live.state.fetchval("SELECT count(*) = 1 FROM cdc.couplings WHERE mapping = 'CATEGORY'"),
                     what="the deleted categories' couplings gone")
    assert await live.state.fetchval("SELECT count(*) FROM cdc.parked_events") == 0
    assert await live.state.fetchval("SELECT count(*) FROM cdc.job_errors WHERE state = 'open'") == 0


# ---------------------------------------------------------------- 4. a refused delete keeps its coupling

async def test_a_delete_the_destination_refuses_keeps_its_coupling_and_happens_once_it_can(
        catalog: LiveSync) -> None:
    live = catalog
    await live.erp.execute("INSERT INTO item_category(code, description) VALUES ('OLD', 'Old stock')")
    category = uuid.UUID((await coupled(live, "CATEGORY", "erp", "OLD"))["crm_key"])
    # a CRM table outside every mapping holds on to the category (RESTRICT)
    await live.crm.execute("CREATE TABLE category_note (id serial PRIMARY KEY, "
                           "categoryid uuid REFERENCES category(categoryid) ON DELETE RESTRICT)")
    await live.crm.execute("INSERT INTO category_note(categoryid) VALUES ($1)", category)
    await live.erp.execute("DELETE FROM item_category WHERE code = 'OLD'")

    async def refused() -> bool:
        return bool(await live.state.fetchval("SELECT count(*) FROM cdc.parked_events WHERE mapping = 'CATEGORY'"))

    await live.until(refused, timeout=30, what="the refused delete parked")
    assert await live.coupling("CATEGORY", "erp", "OLD") is not None, "a delete that did not happen keeps its coupling"
    assert await live.crm.fetchval("SELECT count(*) FROM category WHERE categoryid = $1", category) == 1
    # a full sync while the delete waits does not bring back in the ERP what its user deleted (the CRM category is
    # still coupled: its partner is gone, and its delete is on the way)
    synced = await live.cdc("sync", "--mapping", "CATEGORY", "--full", "--yes", timeout=300)
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert await live.erp.fetchval("SELECT count(*) FROM item_category WHERE code = 'OLD'") == 0, \
        "the full sync re-created the category the ERP user deleted"
    assert await live.coupling("CATEGORY", "erp", "OLD") is not None

    await live.crm.execute("DELETE FROM category_note")
    await live.until(lambda: live.crm.fetchval("SELECT count(*) = 0 FROM category WHERE categoryid = $1", category),
                     timeout=60, what="the delete applied once nothing refuses it")
    await live.until(lambda: _no_coupling(live, "CATEGORY", "erp", "OLD"), what="coupling removed with the delete")
    await live.until(lambda: live.state.fetchval("SELECT count(*) = 0 FROM cdc.parked_events"),
                     what="the parked delete released")
    assert await live.state.fetchval("SELECT state FROM cdc.job_errors WHERE mapping = 'CATEGORY'") == "resolved"


async def _no_coupling(live: LiveSync, mapping: str, system: str, key: str) -> bool:
    return await live.coupling(mapping, system, key) is None


# ---------------------------------------------------------------- 5. dates round-trip exactly

async def test_extreme_and_infinite_dates_arrive_exactly(catalog: LiveSync) -> None:
    live = catalog
    dates = {"IT-MIN": "0001-01-01", "IT-MAX": "9999-12-31", "IT-INF": "infinity", "IT-NINF": "-infinity",
             "IT-BIG": "12000-06-01", "IT-BC": "0044-03-15 BC"}
    for no, value in dates.items():
        await live.erp.execute("INSERT INTO item(no, description, available_from) VALUES ($1, $1, $2::text::date)",
                               no, value)
    for no, value in dates.items():
        coupling = await coupled(live, "ITEM", "erp", no)
        held = await live.crm.fetchval("SELECT validfrom::text FROM product WHERE productid = $1",
                                       uuid.UUID(coupling["crm_key"]))
        assert held == value, f"{no}: the ERP holds {value}, the CRM {held}"
    # and back: a CRM change to an extreme date reaches the ERP exactly
    coupling = await live.coupling("ITEM", "erp", "IT-MIN")
    await live.crm.execute("UPDATE product SET validfrom = '9999-12-31' WHERE productid = $1",
                           uuid.UUID(coupling["crm_key"]))
    await live.until(lambda: live.erp.fetchval("SELECT available_from::text = '9999-12-31' FROM item "
                                               "WHERE no = 'IT-MIN'"), what="the extreme date back in the ERP")


async def test_verify_sees_an_infinity_where_the_other_side_holds_the_last_finite_date(catalog: LiveSync) -> None:
    live = catalog
    await live.erp.execute("INSERT INTO item(no, description, available_from) VALUES ('IT-EDGE', 'edge', "
                           "'9999-12-31')")
    product = uuid.UUID((await coupled(live, "ITEM", "erp", "IT-EDGE"))["crm_key"])
    assert (await verify(live.settings, load_mapping_file(live.settings.mapping_file), only="ITEM")).diverges is False
    # a difference the sync did not make and capture does not see (written under an origin of the sync's own)
    origin = f"{live.settings.replication_origin_prefix}_crm_test_{live.tag}"
    await live.crm.execute("SELECT pg_replication_origin_create($1)", origin)
    await live.crm.execute("SELECT pg_replication_origin_session_setup($1)", origin)
    try:
        await live.crm.execute("UPDATE product SET validfrom = 'infinity' WHERE productid = $1", product)
    finally:
        await live.crm.execute("SELECT pg_replication_origin_session_reset()")
        await live.crm.execute("SELECT pg_replication_origin_drop($1)", origin)
    report = await verify(live.settings, load_mapping_file(live.settings.mapping_file), only="ITEM")
    differences = report.checks[0].differences
    assert [d.erp_key for d in differences] == ["IT-EDGE"]
    assert {f.column for f in differences[0].fields} <= {"validfrom", "available_from"}
