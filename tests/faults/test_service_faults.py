"""The fault suite: during a mixed workload on both systems, capture and worker are killed, the broker and the
database restart, the broker freezes; poison is written straight to the topics; a mapped column disappears.
After each: nothing lost, nothing duplicated, dead letters accounted for, the service still running."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import time
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from cdc.demo.workload import generate
from cdc.settings import Settings
from cdc.stack.kafka import LocalKafka
from cdc.stack.postgres import LocalPostgres
from tests.faults.service import Service

pytestmark = pytest.mark.asyncio(loop_scope="session")

LONG = os.environ.get("CDC_SLOW") == "1"
LONG_MINUTES = float(os.environ.get("CDC_FAULT_MINUTES", "30"))
FREEZE_SECONDS = 30.0


@pytest.fixture
async def service(settings: Settings, tmp_path: Path):
    svc = Service(settings, tmp_path)
    await svc.create()
    try:
        svc.cli("demo", "seed", "--both", "--customers", "120", "--overlap", "0.3")
        svc.start("capture", "capture")
        svc.cli("full-sync", "--yes", "--restore")
        svc.start("worker", "worker")
        yield svc
    finally:
        await svc.destroy()


def restart(svc: Service, name: str, *args: str) -> None:
    svc.kill(name)
    svc.start(name, *args)


async def keep_alive(svc: Service, stop: asyncio.Event) -> None:
    """What an operator's supervisor does: a component that exited is started again."""
    while not stop.is_set():
        for name, args in (("capture", ("capture",)), ("worker", ("worker",))):
            if not svc.alive(name):
                svc.start(name, *args)
        await asyncio.sleep(0.5)


async def test_kills_restarts_and_a_frozen_broker_lose_and_duplicate_nothing(service: Service,
                                                                            settings: Settings) -> None:
    rng = random.Random(11)
    stop = asyncio.Event()
    guard = asyncio.create_task(keep_alive(service, stop))
    started = time.monotonic()
    rounds = 0
    try:
        # bounded: one round of every fault; long (CDC_SLOW=1): rounds until CDC_FAULT_MINUTES (30) have passed
        while rounds == 0 or (LONG and time.monotonic() - started < LONG_MINUTES * 60):
            rounds += 1
            load = asyncio.create_task(generate(service.settings, rate=150, duration=75, seed=rng.randrange(1000)))
            for _ in range(4):
                await asyncio.sleep(rng.uniform(1, 3))
                restart(service, "capture", "capture")
                await asyncio.sleep(rng.uniform(1, 3))
                restart(service, "worker", "worker")
            kafka = LocalKafka(settings)
            await asyncio.to_thread(kafka.stop)
            await asyncio.sleep(2)
            await asyncio.to_thread(kafka.start)
            await kafka.wait_ready(90)
            postgres = LocalPostgres(settings)
            await asyncio.to_thread(postgres.stop)
            await asyncio.sleep(1)
            await asyncio.to_thread(postgres.start)
            await postgres.wait_ready(60)
            pid = kafka.pid()
            assert pid is not None
            os.kill(pid, signal.SIGSTOP)
            await asyncio.sleep(FREEZE_SECONDS)
            os.kill(pid, signal.SIGCONT)
            await load
            # after every round: everything that can sync has, and both systems verify equal
            await service.settle(timeout=300)
            verdict = service.verify()
            assert verdict["exit_code"] == 0, f"round {rounds}: {service.divergences(verdict)}"
            assert await service.unaccounted(verdict) == [], "parked changes that verify does not report as blocked"
            print(f"round {rounds} clean after {time.monotonic() - started:.0f} s")  # noqa: T201 - the long run's log
    finally:
        stop.set()
        await guard
    assert service.alive("capture") and service.alive("worker")


async def test_poison_goes_to_the_dead_letter_topic_and_an_error_record(service: Service) -> None:
    s = service.settings
    topic = s.topic("erp", "customer")
    poison = [b"not json at all", b'{"op": "u", "source": {"table": "customer"}}', b"\xff\xfe invalid utf-8",
              json.dumps({"op": "u", "after": {"no": "C99999", "credit_limit": "NaN"}, "system": "erp",
                          "source": {"table": "customer"}}).encode()]
    producer = AIOKafkaProducer(bootstrap_servers=s.kafka_bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for value in poison:
            await producer.send_and_wait(topic, value, key=b'{"no":"C99999"}')
    finally:
        await producer.stop()
    conn = await asyncpg.connect(s.dsn("state"))
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            errors = await conn.fetchval("SELECT count(*) FROM cdc.job_errors WHERE message LIKE 'dead letter%'")
            if errors >= 3:
                break
            await asyncio.sleep(0.3)
        assert errors >= 3
    finally:
        await conn.close()
    consumer = AIOKafkaConsumer(s.dead_letter_topic, bootstrap_servers=s.kafka_bootstrap,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    try:
        records = await consumer.getmany(timeout_ms=10000)
        letters = [r for batch in records.values() for r in batch]
    finally:
        await consumer.stop()
    assert len(letters) >= 3
    assert all(dict(r.headers).get("cdc-dlq-reason") for r in letters)
    # Accounted for: one job error per dead letter (no crash here, so no dead letter was published twice).
    conn = await asyncpg.connect(s.dsn("state"))
    try:
        errors = await conn.fetchval("SELECT count(*) FROM cdc.job_errors WHERE message LIKE 'dead letter%'")
    finally:
        await conn.close()
    assert errors == len(letters), f"{len(letters)} dead letters, {errors} dead-letter errors"
    # The partition kept moving: a later real change is still applied.
    erp = await asyncpg.connect(s.dsn("erp"))
    try:
        await erp.execute("UPDATE customer SET city = 'After Poison' WHERE no = (SELECT min(no) FROM customer "
                          "WHERE blocked = '')")
    finally:
        await erp.close()
    await service.settle()
    verdict = service.verify()
    assert verdict["exit_code"] == 0, service.divergences(verdict)
    assert await service.unaccounted(verdict) == []
    assert service.alive("worker") and service.alive("capture")


async def test_a_dropped_target_column_gives_errors_not_a_crash(service: Service) -> None:
    s = service.settings
    crm = await asyncpg.connect(s.dsn("crm"))
    erp = await asyncpg.connect(s.dsn("erp"))
    try:
        await crm.execute("ALTER TABLE account DROP COLUMN address1_city")
        await erp.execute("UPDATE customer SET city = 'Nowhere' WHERE no IN (SELECT no FROM customer "
                          "WHERE blocked = '' ORDER BY no LIMIT 3)")
    finally:
        await crm.close()
        await erp.close()
    state = await asyncpg.connect(s.dsn("state"))
    try:
        deadline = time.monotonic() + 60
        found = 0
        while time.monotonic() < deadline and not found:
            found = await state.fetchval("SELECT count(*) FROM cdc.job_errors WHERE message LIKE '%address1_city%'")
            await asyncio.sleep(0.3)
        assert found, "no error names the dropped column"
        messages = await state.fetch("SELECT message FROM cdc.job_errors WHERE message LIKE '%address1_city%'")
        assert all("\n" not in r["message"] for r in messages), "errors are one line each"
        # A worker (re)started while the column is missing runs too: the same changes fail as errors.
        restart(service, "worker", "worker")
        await service.working("worker")
        erp = await asyncpg.connect(s.dsn("erp"))
        try:
            # other customers: an open error of a record is not recorded twice
            await erp.execute("UPDATE customer SET city = 'Nowhere Else' WHERE no IN (SELECT no FROM customer "
                              "WHERE blocked = '' ORDER BY no OFFSET 3 LIMIT 3)")
        finally:
            await erp.close()
        deadline = time.monotonic() + 60
        again = found
        while time.monotonic() < deadline and again <= found:
            again = await state.fetchval("SELECT count(*) FROM cdc.job_errors WHERE message LIKE '%address1_city%'")
            await asyncio.sleep(0.3)
        assert again > found, "a restarted worker records no error for the dropped column"
    finally:
        await state.close()
    await asyncio.sleep(1)
    assert service.alive("worker") and service.alive("capture")
