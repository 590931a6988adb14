"""A batch that died is recovered by the next batch that decides about its records, even when the dead batch's
backend has not noticed the death yet when that next batch starts (the worker-kill fault test found a batch that
skipped the dead one's announced updates — still held by the dying backend — and decided on a stale fingerprint:
the CRM kept a name the ERP no longer had). The engine is driven directly; the dead batch is played by hand."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from cdc import database
from cdc.demo.setup import apply_schema
from cdc.mapping.load import load_mapping_file
from cdc.orchestrator.replay import ReplayTarget, encode
from cdc.settings import Settings
from cdc.state import couplings as coupling_store
from cdc.state import migrate, update_intents
from cdc.state.update_intents import UpdateIntent
from consumers.batch import Engine
from consumers.incoming import Incoming, decode, interpret
from consumers.locks import lock_id
from consumers.systems import SystemLink, open_links
from schemas.change_event import Decoded
from tests.throwaway import drop_throwaway


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[tuple[Settings, Engine, dict[str, SystemLink]]]:
    tag = uuid.uuid4().hex[:8]
    s = Settings(**{**settings.model_dump(), "erp_database": f"cdc_test_erp_r{tag}",
                    "crm_database": f"cdc_test_crm_r{tag}", "state_database": f"cdc_test_state_r{tag}",
                    "topic_prefix": f"r{tag}"})
    admin = await asyncpg.connect(s.local_dsn("postgres"))
    for name in (s.erp_database, s.crm_database, s.state_database):
        await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    await apply_schema(s.dsn("erp"), "erp")
    await apply_schema(s.dsn("crm"), "crm")
    state = await database.connect(s.dsn("state"), role="state")
    await migrate.migrate(state)
    await state.close()
    mapping_file = load_mapping_file(s.mapping_file)
    links = await open_links(s, mapping_file)
    try:
        yield s, Engine(s, mapping_file, links), links
    finally:
        for link in links.values():
            await link.close()
        await drop_throwaway(s)


def change_of(engine: Engine, links: dict[str, SystemLink], row: dict[str, Any], op: str) -> Incoming:
    target = ReplayTarget(topic="t", system="erp", database="d", schema="public", table="customer", key_columns=("no",),
                          run_id="r", job_id=str(uuid.uuid4()), mapping="CUSTOMER", create=False)
    value = json.loads(encode(target, row, int(time.time() * 1000))[1])
    value.update(op=op, replay=None, event_id=f"e:{uuid.uuid4()}")
    decoded = decode(json.dumps(value).encode())
    assert isinstance(decoded, Decoded)
    found = interpret(decoded, "erp", links["erp"].tables, [engine.mapping_file.get("CUSTOMER")],
                      origin_prefix=engine.settings.replication_origin_prefix)
    assert isinstance(found, list)
    return Incoming(decoded.event, decoded.payload, *found[0])


async def test_the_updates_of_a_batch_whose_backend_is_still_dying_are_recovered_before_its_records_are_decided(
        engine: tuple[Settings, Engine, dict[str, SystemLink]]) -> None:
    s, sync, links = engine
    erp, crm = links["erp"].writer, links["crm"].writer
    state = await database.connect(s.dsn("state"), role="state")
    announcer = await database.connect(s.dsn("state"), role="state")
    dying = await database.connect(s.dsn("state"), role="state")
    try:
        await erp.execute("INSERT INTO customer(no, name) VALUES ('R1', 'Rook')")
        account = uuid.uuid4()
        await crm.execute("INSERT INTO account(accountid, accountnumber, name) VALUES ($1, 'R1', 'Rook')", account)
        await coupling_store.upsert_many(state, [coupling_store.Coupling(
            "CUSTOMER", "R1", str(account), {"no": "R1", "name": "Rook"}, {"accountnumber": "R1", "name": "Rook"})])

        # the dead batch: it held the pair, announced writing the ERP's new name into the CRM, wrote it, and died
        # before its state commit — its backend not gone yet (its transaction still open)
        dead = dying.transaction()
        await dead.start()
        await dying.execute("SELECT pg_advisory_xact_lock($1)", lock_id("CUSTOMER", "erp", "R1"))
        intent = await update_intents.announce(announcer, "CUSTOMER", "erp", [UpdateIntent(
            "R1", str(account), {"crm": {"name": "Rook Group"}}, {"name": "Rook Group"}, {"name": "Rook Group"})])
        await update_intents.hold(dying, intent)
        await crm.execute("UPDATE account SET name = 'Rook Group' WHERE accountid = $1", account)
        # meanwhile the ERP user changed the name back
        await erp.execute("UPDATE customer SET name = 'Rook' WHERE no = 'R1'")

        row = dict(await erp.fetchrow("SELECT * FROM customer WHERE no = 'R1'"))
        next_batch = asyncio.create_task(sync.process(state, [change_of(sync, links, row, "u")], announcer=announcer))
        # the next batch has started while the dead one's backend still holds everything: it waits for the lock
        watcher = await database.connect(s.dsn("state"), role="state")
        try:
            deadline = time.monotonic() + 30
            while not await watcher.fetchval("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                                             "AND NOT granted"):
                assert time.monotonic() < deadline and not next_batch.done(), "the next batch never waited"
                await asyncio.sleep(0.05)
        finally:
            await watcher.close()
        await dying.close()  # the backend notices the death: its transaction ends, its locks and its row are free
        [(_, decision)] = await asyncio.wait_for(next_batch, 30)

        assert decision.verdict == "applied", decision.reason
        assert await crm.fetchval("SELECT name FROM account WHERE accountid = $1", account) == "Rook"
        assert await state.fetchval("SELECT count(*) FROM cdc.update_intents") == 0
    finally:
        await state.close()
        await announcer.close()
        if not dying.is_closed():
            await dying.close()
