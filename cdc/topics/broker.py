"""Talking to the broker from a command: which errors are worth another attempt, and `request`, which retries
those (with the one backoff policy) until a deadline and then gives up with one line.

A fresh broker answers metadata requests before it serves consumer groups: the first FindCoordinator creates
`__consumer_offsets`, and until its partitions are loaded every group request fails with "coordinator not
available". Leaders move, requests time out. None of that is a reason for a command to fail at once.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog
from aiokafka.errors import KafkaConnectionError, KafkaError, KafkaTimeoutError

from cdc.backoff import retry
from cdc.errors import ServiceUnavailable
from cdc.settings import Settings

log = structlog.get_logger(component="kafka")

T = TypeVar("T")

DEADLINE = 30.0
"""Seconds a command keeps retrying a broker that answers with retriable errors before it gives up."""


def retriable(exc: BaseException) -> bool:
    """Whether the broker may well answer the same request a moment later: Kafka's retriable errors
    (coordinator not available or loading, not leader, not controller, request timed out, connection lost...)
    and a request that got no answer in time."""
    if isinstance(exc, KafkaError):
        return bool(exc.retriable) or isinstance(exc, KafkaTimeoutError)
    return isinstance(exc, TimeoutError)


def broker_error(exc: BaseException) -> str:
    """A Kafka client error as a short reason (aiokafka's bootstrap message lists socket tuples)."""
    if isinstance(exc, KafkaConnectionError):
        return "no broker answered (connection refused or timed out)"
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


async def request(settings: Settings, what: str, operation: Callable[[], Awaitable[T]], *,
                  timeout: float = DEADLINE, stop: asyncio.Event | None = None) -> T:
    """`await operation()`, retrying retriable broker errors (each logged) for up to `timeout` seconds
    (`math.inf`: until it succeeds or `stop` is set). A failure becomes ServiceUnavailable, one line:
    "Kafka at … is unreachable: …" when no broker answered, else "Kafka at …: `what`: reason"."""
    logger = log.bind(bootstrap=settings.kafka_bootstrap)

    def note(exc: BaseException, pause: float) -> None:
        logger.warning("kafka not ready, retrying", request=what, error=broker_error(exc), retry_in=round(pause, 2))

    try:
        return await retry(operation, retriable=retriable, timeout=timeout, on_retry=note, stop=stop)
    except (KafkaError, TimeoutError) as exc:
        where = f"Kafka at {settings.kafka_bootstrap}"
        if isinstance(exc, KafkaConnectionError):
            raise ServiceUnavailable(f"{where} is unreachable: {broker_error(exc)}") from None
        within = "" if math.isinf(timeout) or not retriable(exc) else f" (still failing after {timeout:g} s)"
        raise ServiceUnavailable(f"{where}: {what}: {broker_error(exc)}{within}") from None
