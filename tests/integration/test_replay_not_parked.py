"""The worker never parks a replay: a replayed record whose lookup is not coupled fails on its job with a clear
error (its dependencies were replayed first, waiting would not help); a live change in the same situation is still
parked until the lookup is coupled."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from cdc.mapping.load import load_mapping_file
from cdc.orchestrator.replay import Publisher, ReplayTarget, wait_processed
from cdc.orchestrator.runner import start_producer
from cdc.orchestrator.workers import WorkerHost
from cdc.settings import Settings
from cdc.state import jobs, mapping_settings, migrate
from cdc.topics.admin import ensure_topics
from consumers import Worker
from tests.acceptance.orchestrator_env import OrchestratorEnv, until


@pytest.fixture(scope="module")
async def env(settings: Settings) -> AsyncIterator[OrchestratorEnv]:
    environment = await OrchestratorEnv(settings, "park").create()
    try:
        conn = await environment.connect("erp")
        try:
            # in the CUSTOMER filter, but not coupled: live changes of CUSTOMER sync only coupled records, so only a
            # sync of CUSTOMER (or `cdc couple`) couples it — what a live change of its contact waits for
            await conn.execute("INSERT INTO customer (no, name, blocked) VALUES ('C0009', 'Not Synced Ltd', '')")
            await conn.execute("INSERT INTO contact (no, first_name, surname, email, customer_no) VALUES "
                               "('CT0005', 'Ada', 'Byron', 'ada@notsynced.example', 'C0009'), "
                               "('CT0006', 'Bob', 'Byron', 'bob@notsynced.example', 'C0009')")
        finally:
            await conn.close()
        yield environment
    finally:
        await environment.drop()


async def test_a_replay_whose_lookup_is_not_coupled_fails_instead_of_parking(env: OrchestratorEnv) -> None:
    s = env.settings
    mapping_file = load_mapping_file(s.mapping_file)
    state = await env.connect("state")
    try:
        await migrate.migrate(state)
        await mapping_settings.set_sync_only_coupled(state, ["CONTACTS"], False)  # live changes may create
        await ensure_topics(s, mapping=mapping_file)
        job = await jobs.start_job(state, "CONTACTS", "full", "to_crm", uuid.uuid4())
        rows = [dict(r) for r in await env.rows("erp", "SELECT * FROM contact ORDER BY no")]
        target = ReplayTarget(topic=s.topic("erp", "contact"), system="erp", database=s.erp_database,
                              schema="public", table="contact", key_columns=("no",), run_id=str(job.run_id),
                              job_id=str(job.id), mapping="CONTACTS", create=True)
        producer = await start_producer(s)
        try:
            publisher = Publisher(producer)
            await publisher.publish(target, rows[:1])  # CT0005 as a replay
            live = json.loads(publisher_value(target, rows[1]))  # CT0006 as a live change
            live["replay"], live["op"], live["event_id"] = None, "c", "erp:1:1:0"
            live["source"]["snapshot"] = "false"
            await producer.send_and_wait(s.topic("erp", "contact"), json.dumps(live).encode(), b'{"no":"CT0006"}',
                                         headers=[("cdc-schema-version", b"1")])
            last = await publisher.flush()
            async with WorkerHost(s, mapping_file, Worker) as host:
                assert host.started
                assert await wait_processed(state, s.consumer_group, last, stop=asyncio.Event(), stall_timeout=60,
                                            check=host.check)
                await until(lambda: state.fetchval("SELECT count(*) FROM cdc.parked_events"), timeout=30,
                            what="the live change parked")
        finally:
            await producer.stop()
        done = await jobs.get_job(state, job.id)
        assert done is not None and done.counts.failed == 1 and done.counts.inserted == 0
        error = await state.fetchrow("SELECT * FROM cdc.job_errors WHERE source_key = 'CT0005'")
        assert error["job_id"] == job.id
        assert error["message"] == ("CONTACTS: contact CT0005: customer C0009 is not coupled in CUSTOMER "
                                    "(outside its filter, or not synced)")
        parked = await state.fetch("SELECT source_key FROM cdc.parked_events")
        assert [r["source_key"] for r in parked] == ["CT0006"]
    finally:
        await state.close()


def publisher_value(target: ReplayTarget, row: dict) -> bytes:
    from cdc.orchestrator.replay import encode

    return encode(target, row, int(time.time() * 1000))[1]
