"""`cdc full-sync` on a schema pair that is not the demo's (examples/catalog), with data on both sides: a category
tree four levels deep synced in one run, and items whose own replay fails meeting CRM products with their number —
matched, never created over (issue: a full sync overwrote 8,000 existing ERP items)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cdc.settings import Settings
from tests.acceptance.orchestrator_env import OrchestratorEnv, counters, jobs_by

pytestmark = pytest.mark.acceptance

CATALOG = Path(__file__).resolve().parents[2] / "examples" / "catalog"
ITEMS = 300
OVERLAP = range(10, 40)  # items whose number a CRM product already holds
REFUSED = range(10, 20)  # ...of which the CRM refuses the ERP's values (negative price)


def tree() -> list[tuple[str, str | None]]:
    """85 categories, 4 levels; codes sort children before their parents (Z > Y > X > W)."""
    rows: list[tuple[str, str | None]] = [("ZROOT", None)]
    for a in range(4):
        rows.append((f"Y{a}", "ZROOT"))
        for b in range(4):
            rows.append((f"X{a}{b}", f"Y{a}"))
            for c in range(4):
                rows.append((f"W{a}{b}{c}", f"X{a}{b}"))
    return rows


@pytest.fixture(scope="module")
async def env(settings: Settings) -> AsyncIterator[OrchestratorEnv]:
    schemas = {"erp": (CATALOG / "erp.sql").read_text(), "crm": (CATALOG / "crm.sql").read_text()}
    environment = await OrchestratorEnv(settings, "integrity", schemas=schemas,
                                        mapping_file=CATALOG / "mappings.yaml").create()
    try:
        erp, crm = await environment.connect("erp"), await environment.connect("crm")
        try:
            categories = tree()
            # children inserted first would violate the ERP's own foreign key: parents first here
            await erp.executemany("INSERT INTO item_category(code, parent_code, description) VALUES ($1, $2, $1)",
                                  categories)
            leaves = [code for code, _ in categories if code.startswith("W")]
            await erp.executemany(
                "INSERT INTO item(no, description, category_code, unit_price) VALUES ($1, $2, $3, $4)",
                [(f"IT{n:06d}", f"ERP item {n}", leaves[n % len(leaves)], -1 if n in REFUSED else n)
                 for n in range(ITEMS)])
            await crm.executemany("INSERT INTO product(productnumber, name, price) VALUES ($1, $2, 5)",
                                  [(f"IT{n:06d}", f"CRM product {n}") for n in OVERLAP])
        finally:
            await erp.close()
            await crm.close()
        yield environment
    finally:
        await environment.drop()


async def test_one_full_sync_couples_a_whole_tree_and_never_creates_over_an_existing_item(
        env: OrchestratorEnv) -> None:
    items_before = {r["no"]: dict(r) for r in await env.rows("erp", "SELECT * FROM item")}

    done = env.cdc("full-sync", "--yes", "--json", timeout=600)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    jobs = {key: counters(job) for key, job in jobs_by(env.cdc_json("jobs", "--limit", "50"),
                                                         run_id=result["run_id"]).items()}

    # 2. the whole tree in one run, parents before children
    assert jobs[("CATEGORY", "to_crm")] == {"inserted": 85}
    wrong_parent = await env.value("crm", """
        SELECT count(*) FROM category c LEFT JOIN category p ON p.categoryid = c.parentcategoryid
        WHERE (c.code = 'ZROOT') <> (p.categoryid IS NULL)""")
    assert wrong_parent == 0
    # 1. items whose own replay failed were matched by the products' step, not created over
    assert jobs[("ITEM", "to_crm")] == {"inserted": ITEMS - len(OVERLAP), "coupled": len(OVERLAP) - len(REFUSED),
                                        "modified": len(OVERLAP) - len(REFUSED), "failed": len(REFUSED)}
    assert "inserted" not in jobs[("ITEM", "to_erp")], jobs[("ITEM", "to_erp")]
    assert jobs[("ITEM", "to_erp")].get("coupled") == len(REFUSED)
    items_after = {r["no"]: dict(r) for r in await env.rows("erp", "SELECT * FROM item")}
    assert set(items_after) == set(items_before)
    changed = {no for no in items_before if items_after[no] != items_before[no]}
    assert changed == {f"IT{n:06d}" for n in REFUSED}, "only items a decision coupled may change"
    couplings = await env.value("state", "SELECT count(*) FROM cdc.couplings WHERE mapping = 'ITEM'")
    assert couplings == ITEMS
    # their failures closed themselves once the products' step synced them
    assert await env.value("state", "SELECT count(*) FROM cdc.job_errors WHERE state = 'open'") == 0
    assert await env.value("state", "SELECT count(*) FROM cdc.job_errors WHERE state = 'resolved'") == len(REFUSED)
