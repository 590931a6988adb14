"""Capture over the replication protocol when the services under it fail: the broker restarts, PostgreSQL restarts,
the broker freezes for several times the walsender's timeout. After each, every committed change is on the topic —
at least once, copies with the same event id, first copies in commit order per key — and capture kept running."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
from collections import defaultdict
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from pydantic import SecretStr

from cdc.demo.setup import apply_schema
from cdc.settings import Settings
from cdc.stack.kafka import LocalKafka
from cdc.stack.postgres import LocalPostgres
from tests.integration.capture_fixtures import CaptureProcess, Record, TopicReader, wait_until
from tests.throwaway import drop_throwaway

pytestmark = pytest.mark.asyncio(loop_scope="session")

FREEZE_TIMEOUTS = 4  # the broker stays frozen this many times wal_sender_timeout


@pytest.fixture
async def erp(settings: Settings, tmp_path: Path) -> AsyncIterator[Settings]:
    """A throwaway ERP database with the demo schema, its own topic prefix and CDC_HOME."""
    token = secrets.token_hex(3)
    s = settings.model_copy(update={
        "erp_database": f"cdc_fault_cap_{token}_erp", "crm_database": f"cdc_fault_cap_{token}_crm",
        "state_database": f"cdc_fault_cap_{token}_state", "topic_prefix": f"fcap{token}", "home": tmp_path,
        "pg_password": SecretStr(settings.local_password()),  # the stack's, not one generated for tmp_path
        "heartbeat_interval": 1.0})
    admin = await asyncpg.connect(settings.local_dsn("postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{s.erp_database}"')
    finally:
        await admin.close()
    await apply_schema(s.dsn("erp"), "erp")
    try:
        yield s
    finally:
        await drop_throwaway(s)


class Changes:
    """Item inserts and updates in small transactions, and what they must produce on the topic."""

    def __init__(self, s: Settings) -> None:
        self.s = s
        self.expected: set[tuple[str, str, str]] = set()  # (key, op, unit_price)

    async def write(self, first: int, transactions: int) -> None:
        conn = await asyncpg.connect(self.s.dsn("erp"))
        try:
            for t in range(first, first + transactions):
                keys = [f"F{t:05d}_{r}" for r in range(5)]
                async with conn.transaction():
                    await conn.executemany("INSERT INTO item (no, description, unit_price) VALUES ($1, 'fault', 0)",
                                           [(k,) for k in keys])
                    await conn.execute("UPDATE item SET unit_price = $2 WHERE no = $1", keys[0], t + 0.5)
                self.expected.update((k, "c", "0.00") for k in keys)
                self.expected.add((keys[0], "u", f"{t}.50"))
        finally:
            await conn.close()

    async def all_published(self, within: float) -> list[Record]:
        async with TopicReader(self.s.kafka_bootstrap, [self.s.topic("erp", "item")]) as reader:
            def complete(rs: list[Record]) -> bool:
                return self.expected <= {(r.key["no"], r.event.op, r.event.row["unit_price"]) for r in rs}

            records = await reader.until(complete, within, "every committed change on the topic")
        by_id: dict[str, list[Record]] = defaultdict(list)
        for r in records:
            by_id[r.event.event_id].append(r)
        assert len(by_id) == len(self.expected), "one event id per committed change"
        for copies in by_id.values():
            assert all(c.event.model_dump(exclude={"ts_ms"}) == copies[0].event.model_dump(exclude={"ts_ms"})
                       for c in copies[1:])
        firsts: dict[str, list[tuple[int, int]]] = defaultdict(list)
        seen: set[str] = set()
        for r in sorted(records, key=lambda r: (r.partition, r.offset)):
            if r.event.event_id not in seen:
                seen.add(r.event.event_id)
                firsts[r.key["no"]].append(r.event.position)
        assert all(positions == sorted(positions) for positions in firsts.values()), "commit order per key"
        return records


async def started(s: Settings, log: Path) -> CaptureProcess:
    proc = CaptureProcess(s, "erp", log).start()

    async def streaming() -> bool:
        assert proc.alive(), f"capture exited: see {log}"
        return b'"streaming"' in log.read_bytes()

    await wait_until(streaming, 120, "capture to stream")
    return proc


async def walsender(s: Settings) -> int | None:
    conn = await asyncpg.connect(s.dsn("erp"))
    try:
        return await conn.fetchval("SELECT active_pid FROM pg_replication_slots WHERE database = current_database()")
    finally:
        await conn.close()


async def test_a_broker_restart_loses_nothing(erp: Settings, settings: Settings, tmp_path: Path) -> None:
    changes, log = Changes(erp), tmp_path / "capture.log"
    proc = await started(erp, log)
    try:
        await changes.write(0, 100)
        kafka = LocalKafka(settings)
        await asyncio.to_thread(kafka.stop)
        await changes.write(100, 200)  # read by capture while no broker answers
        await asyncio.to_thread(kafka.start)
        await kafka.wait_ready(90)
        await changes.write(300, 50)
        await changes.all_published(240)
        assert proc.alive()
        assert proc.stop() == 0
    finally:
        if proc.alive():
            proc.kill()


async def test_a_postgresql_restart_loses_nothing(erp: Settings, settings: Settings, tmp_path: Path) -> None:
    changes, log = Changes(erp), tmp_path / "capture.log"
    proc = await started(erp, log)
    try:
        await changes.write(0, 200)
        before = await walsender(erp)
        postgres = LocalPostgres(settings)
        await asyncio.to_thread(postgres.stop)
        await asyncio.to_thread(postgres.start)
        await postgres.wait_ready(60)
        await changes.write(200, 200)
        await changes.all_published(240)
        after = await walsender(erp)
        assert before is not None and after is not None and after != before, "streaming again, from a new walsender"
        assert proc.alive()
        assert proc.stop() == 0
    finally:
        if proc.alive():
            proc.kill()


async def test_a_frozen_broker_does_not_make_the_server_drop_capture(erp: Settings, settings: Settings,
                                                                    tmp_path: Path) -> None:
    """The broker stops answering for four times wal_sender_timeout while changes keep coming: capture stops
    reading once its unacknowledged events reach the limit (TCP then holds the walsender back), but its status
    updates keep the walsender's connection alive; once the broker answers again, everything is published over
    the same connection."""
    timeout = 3
    admin = await asyncpg.connect(erp.dsn("erp"))
    try:
        await admin.execute(f"ALTER DATABASE \"{erp.erp_database}\" SET wal_sender_timeout = '{timeout}s'")
    finally:
        await admin.close()
    small = erp.model_copy(update={"capture_batch_changes": 500})
    changes, log = Changes(small), tmp_path / "capture.log"
    proc = await started(small, log)
    kafka = LocalKafka(settings)
    pid = kafka.pid()
    assert pid is not None
    try:
        await changes.write(0, 20)
        await changes.all_published(60)
        before = await walsender(small)
        os.kill(pid, signal.SIGSTOP)
        try:
            frozen_until = asyncio.get_running_loop().time() + FREEZE_TIMEOUTS * timeout
            await changes.write(20, 600)  # 3,600 changes: far more than capture publishes without acknowledgements
            await asyncio.sleep(max(0.0, frozen_until - asyncio.get_running_loop().time()))
            assert await walsender(small) == before, "the server kept capture's connection while the broker was frozen"
        finally:
            os.kill(pid, signal.SIGCONT)
        await changes.all_published(240)
        assert await walsender(small) == before, "published over the same replication connection"
        assert proc.alive()
        assert b"no message from the server" not in log.read_bytes() and b"connection lost" not in log.read_bytes()
        assert proc.stop() == 0
    finally:
        if proc.alive():
            proc.kill()
