"""How a topic's records are keyed, learnt from its newest record (`schemas.record_key`): the orchestrator keys the
rows it replays into a topic a Debezium connector writes the way that connector does, so a row's replays and its
changes share a partition (one worker, in order).

Our own keys written that way keep the topic consistent: once learnt, the newest record of every partition says
the same. A topic with no records yet is keyed plainly (`{"col":value}`, which is also Debezium's key with
`key.converter.schemas.enable=false`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from cdc.errors import ServiceUnavailable
from cdc.settings import Settings
from cdc.topics.admin import admin_client
from schemas.record_key import PLAIN, KeyFormat

log = structlog.get_logger()


async def learn(settings: Settings, topic: str, *, timeout: float = 10.0) -> KeyFormat:
    """The key format of `topic`'s newest keyed record; plain when it has none (or the broker does not answer
    within `timeout`: the replay then keys plainly, as before, and says so)."""
    logger = log.bind(topic=topic)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False,
                                group_id=None, client_id="cdc-sync-key-format")
    try:
        await asyncio.wait_for(consumer.start(), timeout)
        newest = await asyncio.wait_for(_newest_key(settings, consumer, topic), timeout)
    except (KafkaError, TimeoutError, ServiceUnavailable) as exc:
        logger.warning("could not read the topic's keys: replayed rows are keyed as plain JSON",
                       error=str(exc) or type(exc).__name__)
        return PLAIN
    finally:
        with contextlib.suppress(Exception):
            await consumer.stop()
    found = KeyFormat.learn(newest)
    if not found.plain:
        logger.info("replayed rows keyed as the topic's producer keys them", key_format=found.describe())
    return found


async def _newest_key(settings: Settings, consumer: AIOKafkaConsumer, topic: str) -> bytes | None:
    """The key of the newest (by timestamp) keyed record among the last records of each partition."""
    admin = await admin_client(settings, 10)
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    tps = [TopicPartition(topic, p["partition"]) for d in described if d.get("error_code") == 0
           for p in d.get("partitions", [])]
    if not tps:
        return None
    consumer.assign(tps)
    ends = await consumer.end_offsets(tps)
    starts = await consumer.beginning_offsets(tps)
    waiting = {tp for tp in tps if ends[tp] > starts[tp]}
    for tp in waiting:
        consumer.seek(tp, ends[tp] - 1)
    newest: tuple[int, bytes] | None = None
    deadline = time.monotonic() + 5
    while waiting and time.monotonic() < deadline:
        batches = await consumer.getmany(*waiting, timeout_ms=500)
        for tp, records in batches.items():
            for record in records:
                if record.key is not None and (newest is None or record.timestamp >= newest[0]):
                    newest = (record.timestamp, record.key)
            if records and records[-1].offset >= ends[tp] - 1:
                waiting.discard(tp)
    return None if newest is None else newest[1]
