"""The Kafka producer capture and the orchestrator write with: idempotent (so `acks=all`), batching for a few
milliseconds. An unreachable broker is retried with backoff and logged, never given up on silently: after
`timeout` seconds it becomes a ServiceUnavailable naming the broker."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError

from cdc import log
from cdc.errors import ServiceUnavailable
from cdc.settings import Settings

STARTUP_TIMEOUT = 30.0


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
    logger = log.get(component="producer", bootstrap=settings.kafka_bootstrap)
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = 0.5
    while True:
        producer = AIOKafkaProducer(**config)
        try:
            await producer.start()
            return producer
        except KafkaError as exc:
            await producer.stop()
            reason = broker_error(exc)
            if (deadline is not None and time.monotonic() + delay > deadline) or (stop and stop.is_set()):
                raise ServiceUnavailable(f"Kafka at {settings.kafka_bootstrap} is unreachable: {reason}") from None
            logger.warning("kafka unreachable, retrying", error=reason, retry_in=delay)
        if stop is None:
            await asyncio.sleep(delay)
        else:
            try:
                await asyncio.wait_for(stop.wait(), delay)
            except TimeoutError:
                pass
        delay = min(delay * 2, 10.0)


def broker_error(exc: BaseException) -> str:
    """A Kafka client error as a short reason (aiokafka's bootstrap message lists socket tuples)."""
    if isinstance(exc, KafkaConnectionError):
        return "no broker answered (connection refused or timed out)"
    return str(exc) or type(exc).__name__
