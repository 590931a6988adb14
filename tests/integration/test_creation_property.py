"""Property: a sync never writes over a record it did not decide about.

Generated on the real databases (examples/catalog, ITEM mapping): ERP items and CRM products with overlapping
numbers, uncoupled; some items whose own step fails (a category that is not coupled, a price the CRM refuses);
match rules on or off; the ERP's replay before the CRM's or after, in batches of any size. After both steps, every
pre-existing row is either unchanged or was decided about (coupled by match, or updated through its coupling) —
never written over by a creation, which only ever makes a new row.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import yaml
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from cdc import database
from cdc.mapping.load import load_mapping_file
from cdc.orchestrator.replay import ReplayTarget, encode
from cdc.settings import Settings
from cdc.state import couplings as coupling_store
from cdc.state import jobs, migrate
from consumers.batch import Engine
from consumers.incoming import Incoming, decode, interpret
from consumers.systems import SystemLink, open_links
from schemas.change_event import Decoded
from tests.throwaway import drop_throwaway

CATALOG = Path(__file__).resolve().parents[2] / "examples" / "catalog"
NUMBERS = [f"IT{n:06d}" for n in range(8)]


@dataclass
class Stage:
    settings: Settings
    links: dict[str, SystemLink]
    engines: dict[bool, Engine]  # by "match rules on"
    state: asyncpg.Connection
    announcer: asyncpg.Connection
    loop: asyncio.AbstractEventLoop  # the session's loop, which the connections belong to


@pytest.fixture(scope="module")
async def stage(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stage]:
    tag = uuid.uuid4().hex[:8]
    base = yaml.safe_load((CATALOG / "mappings.yaml").read_text())
    paths = {}
    for match in (True, False):
        spec = yaml.safe_load(yaml.safe_dump(base))
        if not match:
            spec["mappings"][1]["match_on"] = []
        paths[match] = tmp_path_factory.mktemp("prop") / f"catalog-{match}.yaml"
        paths[match].write_text(yaml.safe_dump(spec))
    s = Settings(**{**settings.model_dump(), "erp_database": f"cdc_test_erp_p{tag}",
                    "crm_database": f"cdc_test_crm_p{tag}", "state_database": f"cdc_test_state_p{tag}",
                    "topic_prefix": f"p{tag}", "mapping_file": paths[True]})
    admin = await asyncpg.connect(s.local_dsn("postgres"))
    for name in (s.erp_database, s.crm_database, s.state_database):
        await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    for system in ("erp", "crm"):
        conn = await database.connect(s.dsn(system), role=system)
        await conn.execute((CATALOG / f"{system}.sql").read_text())
        await conn.close()
    state = await database.connect(s.dsn("state"), role="state")
    announcer = await database.connect(s.dsn("state"), role="state")
    await migrate.migrate(state)
    mapping_files = {match: load_mapping_file(path) for match, path in paths.items()}
    links = await open_links(s, mapping_files[True])
    engines = {match: Engine(s, mapping_files[match], links) for match in (True, False)}
    try:
        yield Stage(s, links, engines, state, announcer, asyncio.get_running_loop())  # type: ignore[arg-type]
    finally:
        for link in links.values():
            await link.close()
        await state.close()
        await announcer.close()
        await drop_throwaway(s)


items = st.lists(st.tuples(st.sampled_from(NUMBERS), st.sampled_from([None, "ROOT", "LOOSE"]),
                           st.sampled_from([Decimal("1.00"), Decimal("-1.00")])),
                 unique_by=lambda t: t[0], max_size=6)
products = st.lists(st.tuples(st.sampled_from(NUMBERS), st.sampled_from(["a", "b"])), max_size=6)


async def _reset(stage: Stage) -> None:
    erp, crm = stage.links["erp"].writer, stage.links["crm"].writer
    await erp.execute("TRUNCATE item, item_category")
    await crm.execute("TRUNCATE product, category")
    await stage.state.execute("TRUNCATE cdc.couplings, cdc.coupling_intents, cdc.job_errors, cdc.record_log, "
                              "cdc.parked_events, cdc.jobs CASCADE")
    await erp.execute("INSERT INTO item_category(code) VALUES ('ROOT'), ('LOOSE')")
    root = await crm.fetchval("INSERT INTO category(code) VALUES ('ROOT') RETURNING categoryid")
    await coupling_store.upsert_many(stage.state, [coupling_store.Coupling("CATEGORY", "ROOT", str(root))])


async def _replay(stage: Stage, engine: Engine, system: str, table: str, key: str, sizes: list[int]) -> list:
    link = stage.links[system]
    rows = [dict(r) for r in await link.reader.fetch(f"SELECT * FROM {table} ORDER BY 1")]
    job = await jobs.start_job(stage.state, "ITEM", "full", "to_crm" if system == "erp" else "to_erp")
    target = ReplayTarget(topic="t", system=system, database="d", schema="public", table=table, key_columns=(key,),
                          run_id=str(uuid.uuid4()), job_id=str(job.id), mapping="ITEM", create=True)
    mapping = engine.mapping_file.get("ITEM")
    incoming = []
    for row in rows:
        decoded = decode(encode(target, row, int(time.time() * 1000))[1])
        assert isinstance(decoded, Decoded), decoded
        found = interpret(decoded, system, link.tables, [mapping],  # type: ignore[arg-type]
                          origin_prefix=stage.settings.replication_origin_prefix)
        assert isinstance(found, list), found
        incoming += [Incoming(decoded.event, decoded.payload, m, change) for m, change in found]
    decided = []
    start = 0
    for size in sizes * (len(incoming) + 1):
        if start >= len(incoming):
            break
        decided += await engine.process(stage.state, incoming[start:start + size], announcer=stage.announcer)
        start += size
    return decided


def _values(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in ("modified_at", "modifiedon")}


@hypothesis_settings(max_examples=30, deadline=None, derandomize=True,
                     suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(erp_items=items, crm_products=products, match=st.booleans(), erp_first=st.booleans(),
       sizes=st.lists(st.integers(1, 4), min_size=1, max_size=3))
def test_no_row_is_changed_except_by_a_decision_about_it(stage: Stage, erp_items: list, crm_products: list,
                                                         match: bool, erp_first: bool, sizes: list[int]) -> None:
    stage.loop.run_until_complete(_example(stage, erp_items, crm_products, match, erp_first, sizes))


async def _example(stage: Stage, erp_items: list, crm_products: list, match: bool, erp_first: bool,
                   sizes: list[int]) -> None:
    await _reset(stage)
    erp, crm = stage.links["erp"].writer, stage.links["crm"].writer
    for no, category, price in erp_items:
        await erp.execute("INSERT INTO item(no, description, category_code, unit_price) VALUES ($1, $1, $2, $3)",
                          no, category, price)
    for number, name in crm_products:
        await crm.execute("INSERT INTO product(productnumber, name, price) VALUES ($1, $2, 2)", number, name)
    before = {("erp", r["no"]): _values(dict(r)) for r in await erp.fetch("SELECT * FROM item")}
    before |= {("crm", str(r["productid"])): _values(dict(r)) for r in await crm.fetch("SELECT * FROM product")}

    engine = stage.engines[match]
    steps = [("erp", "item", "no"), ("crm", "product", "productid")]
    decided = []
    for system, table, key in steps if erp_first else steps[::-1]:
        decided += await _replay(stage, engine, system, table, key, sizes)

    about: set[tuple[str, str]] = set()
    for item, decision in decided:
        if decision.verdict in ("created", "restored"):
            partner = (item.change.source == "erp" and "crm" or "erp", decision.partner_key)
            assert partner not in before, f"a creation landed on an existing record: {item.change.key} -> {partner}"
        if decision.writes:
            about.add((item.change.source, item.change.key))
            if decision.verdict != "created":
                about.add(("crm" if item.change.source == "erp" else "erp", decision.partner_key))
    after = {("erp", r["no"]): _values(dict(r)) for r in await erp.fetch("SELECT * FROM item")}
    after |= {("crm", str(r["productid"])): _values(dict(r)) for r in await crm.fetch("SELECT * FROM product")}
    for record, values in before.items():
        assert record in after, f"{record} disappeared"
        if after[record] != values:
            assert record in about, f"{record} changed without a decision about it: {values} -> {after[record]}"
