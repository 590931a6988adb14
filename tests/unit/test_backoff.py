"""The one retry policy: backoff with jitter, and `retry` until a deadline or a number of tries; the schedules each
purpose configures (reconnecting, a collided batch, a parked change)."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiokafka.errors import (
    GroupCoordinatorNotAvailableError,
    KafkaConnectionError,
    KafkaTimeoutError,
    NotLeaderForPartitionError,
    TopicAuthorizationFailedError,
)

from cdc.backoff import Backoff, retry
from cdc.errors import ServiceUnavailable
from cdc.settings import Settings
from cdc.topics.broker import request, retriable
from consumers.parking import PARKED, park_delay
from consumers.worker import BATCH_TRIES, batch_backoff


def test_backoff_doubles_to_its_cap_and_jitter_only_shortens() -> None:
    nominal = Backoff(0.5, 4, rng=lambda: 0.0)
    assert [nominal.next() for _ in range(6)] == [0.5, 1, 2, 4, 4, 4]
    shortest = Backoff(0.5, 4, rng=lambda: 1.0)
    assert [shortest.next() for _ in range(4)] == pytest.approx([0.4, 0.8, 1.6, 3.2])
    spread = {round(Backoff(1, 1).next(), 6) for _ in range(50)}
    assert len(spread) > 10 and all(0.8 <= d <= 1 for d in spread)


def test_backoff_reset_starts_over() -> None:
    delays = Backoff(1, 30, rng=lambda: 0.0)
    delays.next(), delays.next()
    delays.reset()
    assert delays.next() == 1


def test_backoff_by_steps_repeats_the_last_and_jitter_only_shortens() -> None:
    nominal = Backoff(steps=(1, 3, 7), rng=lambda: 0.0)
    assert [nominal.next() for _ in range(5)] == [1, 3, 7, 7, 7]
    nominal.reset()
    assert nominal.next() == 1
    shortest = Backoff(steps=(1, 3, 7), rng=lambda: 1.0)
    assert [shortest.delay(n) for n in range(4)] == pytest.approx([0.8, 2.4, 5.6, 5.6])


def test_the_parked_change_schedule_is_the_documented_one() -> None:
    """docs/operations.md, docs/exactly-once.md: 1, 2, 5, 10, 30, 60, 120 s, then every 5 min, each wait shortened by
    up to a fifth at random (never longer)."""
    steps = [1, 2, 5, 10, 30, 60, 120, 300]
    assert [PARKED.nominal(n) for n in range(10)] == [*steps, 300, 300]
    for attempts in range(12):
        nominal = steps[min(attempts, len(steps) - 1)]
        waits = {park_delay(attempts).total_seconds() for _ in range(40)}
        assert all(0.8 * nominal <= w <= nominal for w in waits), (attempts, waits)
        assert len(waits) > 5  # spread, so changes parked together do not come due together
    assert max(park_delay(10**6).total_seconds() for _ in range(20)) <= 300


def test_a_collided_batch_waits_a_few_tenths_of_a_second_in_all() -> None:
    delays = batch_backoff()
    assert [delays.nominal(n) for n in range(BATCH_TRIES - 1)] == [0.05, 0.1, 0.2, 0.2, 0.2]
    assert sum(delays.next() for _ in range(BATCH_TRIES - 1)) <= 0.75
    assert batch_backoff().next() <= 0.05  # a fresh series for every batch


def test_kafka_errors_worth_another_attempt() -> None:
    for error in (GroupCoordinatorNotAvailableError(), NotLeaderForPartitionError(), KafkaConnectionError(),
                  KafkaTimeoutError(), TimeoutError()):
        assert retriable(error), error
    for error in (TopicAuthorizationFailedError(), ValueError("x")):
        assert not retriable(error), error


async def test_retry_until_the_operation_succeeds() -> None:
    answers = [GroupCoordinatorNotAvailableError(), NotLeaderForPartitionError(), "members"]
    seen: list[float] = []

    async def operation() -> str:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    result = await retry(operation, retriable=retriable, timeout=5, backoff=Backoff(0.01, 0.05),
                         on_retry=lambda exc, pause: seen.append(pause))
    assert result == "members" and len(seen) == 2


async def test_retry_gives_up_at_the_deadline_and_at_once_on_other_errors() -> None:
    calls = 0

    async def coordinator_missing() -> None:
        nonlocal calls
        calls += 1
        raise GroupCoordinatorNotAvailableError()

    started = time.monotonic()
    with pytest.raises(GroupCoordinatorNotAvailableError):
        await retry(coordinator_missing, retriable=retriable, timeout=0.3, backoff=Backoff(0.05, 0.1))
    assert 0.3 <= time.monotonic() - started < 1.5 and calls >= 3

    calls = 0

    async def refused() -> None:
        nonlocal calls
        calls += 1
        raise TopicAuthorizationFailedError()

    with pytest.raises(TopicAuthorizationFailedError):
        await retry(refused, retriable=retriable, timeout=5)
    assert calls == 1


async def test_retry_gives_up_after_its_tries() -> None:
    calls, waits = 0, []

    async def deadlocked() -> None:
        nonlocal calls
        calls += 1
        raise KafkaConnectionError(f"try {calls}")

    with pytest.raises(KafkaConnectionError, match="try 4"):
        await retry(deadlocked, retriable=retriable, attempts=4, backoff=Backoff(0.001, 0.002),
                    on_retry=lambda exc, wait: waits.append(wait))
    assert calls == 4 and len(waits) == 3


async def test_retry_stops_waiting_when_asked_to_stop() -> None:
    stop = asyncio.Event()

    async def failing() -> None:
        stop.set()
        raise KafkaConnectionError()

    started = time.monotonic()
    with pytest.raises(KafkaConnectionError):
        await retry(failing, retriable=retriable, timeout=60, backoff=Backoff(10, 10), stop=stop)
    assert time.monotonic() - started < 1


async def test_a_broker_request_that_keeps_failing_is_one_line() -> None:
    async def coordinator_missing() -> None:
        raise GroupCoordinatorNotAvailableError("Unable to get coordinator id for g")

    with pytest.raises(ServiceUnavailable) as failure:
        await request(Settings(kafka_bootstrap="127.0.0.1:1"), "cannot describe consumer group 'g'",
                      coordinator_missing, timeout=0.2)
    message = str(failure.value)
    assert "\n" not in message
    assert message.startswith("Kafka at 127.0.0.1:1: cannot describe consumer group 'g': [Error 15] "
                              "GroupCoordinatorNotAvailableError")
    assert message.endswith("(still failing after 0.2 s)")
