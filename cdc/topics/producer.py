"""The Kafka producer capture and the orchestrator write with: idempotent (so `acks=all`), batching for a few
milliseconds. An unreachable broker is retried with backoff and logged, never given up on silently: after
`timeout` seconds it becomes a ServiceUnavailable naming the broker."""

from __future__ import annotations

import asyncio
import math
from typing import Any

from aiokafka import AIOKafkaProducer

from cdc.settings import Settings
from cdc.topics.broker import DEADLINE, broker_error, request

__all__ = ["STARTUP_TIMEOUT", "broker_error", "producer_options", "start_producer"]

STARTUP_TIMEOUT = DEADLINE


def producer_options(settings: Settings, *, compression: str | None = None, linger_ms: int = 5,
                     max_batch_size: int = 512 * 1024, client_id: str = "cdc-sync", **extra: Any) -> dict[str, Any]:
    return {
        "bootstrap_servers": settings.kafka_bootstrap,
        "client_id": client_id,
        "enable_idempotence": True,  # implies acks="all"
        "linger_ms": linger_ms,
        "max_batch_size": max_batch_size,
        "max_request_size": max(1024 * 1024, max_batch_size),
        "compression_type": compression,
        "request_timeout_ms": 30_000,
        **extra,
    }


async def start_producer(settings: Settings, *, timeout: float | None = STARTUP_TIMEOUT,
                         stop: asyncio.Event | None = None, **options: Any) -> AIOKafkaProducer:
    """A started producer. Retries an unreachable broker with backoff (each attempt logged) until `timeout`
    seconds have passed (None: forever, or until `stop` is set), then raises ServiceUnavailable."""
    config = producer_options(settings, **options)

    async def start() -> AIOKafkaProducer:
        producer = AIOKafkaProducer(**config)
        try:
            await producer.start()
        except BaseException:
            await producer.stop()
            raise
        return producer

    return await request(settings, "cannot start a producer", start,
                         timeout=math.inf if timeout is None else timeout, stop=stop)
