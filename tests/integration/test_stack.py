"""The local stack is the real thing: a Kafka broker that acknowledges an idempotent producer and keeps a
consumer group's committed offset, and a PostgreSQL server with logical decoding."""

from __future__ import annotations

import subprocess
import sys
import uuid

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from cdc.settings import Settings


def test_stack_status_shows_both_services_answering() -> None:
    result = subprocess.run([sys.executable, "-m", "cdc", "stack", "status"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("answering") == 2


@pytest.mark.asyncio(loop_scope="session")
async def test_kafka_round_trip_with_idempotent_producer_and_committed_offset(settings: Settings) -> None:
    topic, group = f"stack-test-{uuid.uuid4().hex[:8]}", f"stack-group-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        response = await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
        assert all(error == 0 for _, error, *_ in response.topic_errors)
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, enable_idempotence=True)
        await producer.start()
        try:
            sent = [await producer.send_and_wait(topic, f"message {n}".encode()) for n in range(3)]
        finally:
            await producer.stop()
        assert [m.offset for m in sent] == [0, 1, 2]

        consumer = AIOKafkaConsumer(topic, bootstrap_servers=settings.kafka_bootstrap, group_id=group,
                                    enable_auto_commit=False, auto_offset_reset="earliest")
        await consumer.start()
        try:
            received = []
            while len(received) < 3:
                batch = await consumer.getmany(timeout_ms=5000)
                assert batch, "no message came back"
                received += [r.value for records in batch.values() for r in records]
            await consumer.commit()
        finally:
            await consumer.stop()
        assert received == [b"message 0", b"message 1", b"message 2"]
        offsets = await admin.list_consumer_group_offsets(group)
        assert offsets[TopicPartition(topic, 0)].offset == 3
    finally:
        await admin.delete_topics([topic])
        await admin.close()


@pytest.mark.asyncio(loop_scope="session")
async def test_postgres_answers_and_decodes_its_wal(settings: Settings) -> None:
    database = f"cdc_test_stack_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(settings.local_dsn("postgres"))
    await admin.execute(f'CREATE DATABASE "{database}"')
    try:
        conn = await asyncpg.connect(settings.local_dsn(database))
        try:
            assert await conn.fetchval("SHOW wal_level") == "logical"
            slot = f"stack_test_{uuid.uuid4().hex[:8]}"
            await conn.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
            await conn.execute("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", slot)
            await conn.execute("CREATE PUBLICATION stack_pub FOR TABLE t")
            await conn.execute("INSERT INTO t VALUES (1, 'hello')")
            changes = await conn.fetch("SELECT data FROM pg_logical_slot_peek_binary_changes($1, NULL, NULL, "
                                       "'proto_version', '1', 'publication_names', 'stack_pub')", slot)
            kinds = [bytes(row["data"][:1]) for row in changes]
            assert b"B" in kinds and b"I" in kinds and b"C" in kinds  # begin, insert, commit
            await conn.execute("SELECT pg_drop_replication_slot($1)", slot)
        finally:
            await conn.close()
    finally:
        await admin.execute(f'DROP DATABASE "{database}" WITH (FORCE)')
        await admin.close()


def test_postgres_admits_the_replication_connections_capture_streams_over(settings: Settings) -> None:
    """pg_hba.conf has a `replication` line for the stack's address and the role may replicate: a replication
    connection with the stack's DSN is admitted."""
    import psycopg2
    from psycopg2.extras import LogicalReplicationConnection

    conn = psycopg2.connect(settings.local_dsn("postgres"), connection_factory=LogicalReplicationConnection)
    try:
        cursor = conn.cursor()
        cursor.execute("IDENTIFY_SYSTEM")
        system_id, timeline, position, database = cursor.fetchone()
        assert database == "postgres" and timeline >= 1 and "/" in position
    finally:
        conn.close()
