"""The publisher does not wait for acknowledgements while it publishes, confirms a transaction only once its batches
are acknowledged, holds back past its limit of unacknowledged events, and turns a refused batch into a failure."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.errors import KafkaError, KafkaTimeoutError
from aiokafka.producer.message_accumulator import BatchBuilder

from cdc.capture.acks import Acknowledgements
from cdc.capture.publisher import Publisher

pytestmark = pytest.mark.asyncio(loop_scope="session")


class Producer:
    """Hands out batches and keeps the delivery futures for the test to settle."""

    def __init__(self, partitions: int = 2) -> None:
        self.partitions = partitions
        self.sent: list[tuple[str, int, asyncio.Future]] = []

    def create_batch(self) -> BatchBuilder:
        return BatchBuilder(16 * 1024, 0)

    async def partitions_for(self, topic: str) -> set[int]:
        return set(range(self.partitions))

    async def send_batch(self, batch: BatchBuilder, topic: str, *, partition: int) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        self.sent.append((topic, partition, future))
        return future


async def test_a_transaction_is_confirmed_once_its_batches_are_acknowledged() -> None:
    producer = Producer()
    publisher = Publisher(producer, Acknowledgements(100))  # type: ignore[arg-type]
    for n in range(10):
        await publisher.publish("t", f'{{"k":{n}}}'.encode(), b"v")
    publisher.boundary(200, commit_ts=1)
    await publisher.submit()
    assert publisher.acks.confirmed == 100 and publisher.unacknowledged == 10, "published, not acknowledged"
    first, *rest = [future for _, _, future in producer.sent]
    first.set_result(None)
    await asyncio.sleep(0)
    assert publisher.acks.confirmed == 100, "a batch of the transaction is still out"
    for future in rest:
        future.set_result(None)
    await asyncio.sleep(0)
    assert publisher.acks.confirmed == 200 and publisher.unacknowledged == 0 and publisher.acknowledged == 10


async def test_past_its_limit_publish_waits_for_acknowledgements() -> None:
    producer = Producer(partitions=1)
    publisher = Publisher(producer, max_unacknowledged=3)  # type: ignore[arg-type]
    for n in range(2):
        await publisher.publish("t", bytes([n]), b"v")
    third = asyncio.create_task(publisher.publish("t", b"x", b"v"))
    await asyncio.sleep(0.01)
    assert not third.done(), "three unacknowledged events: the third publish waits"
    assert len(producer.sent) == 1, "what was open is handed to the producer first"
    producer.sent[0][2].set_result(None)
    await asyncio.wait_for(third, 1)
    assert publisher.unacknowledged == 0


@pytest.mark.parametrize("refuse", [lambda f: f.set_exception(KafkaTimeoutError()), lambda f: f.cancel()])
async def test_a_refused_batch_fails_the_next_publish_and_is_never_confirmed(refuse) -> None:  # type: ignore[no-untyped-def]
    producer = Producer(partitions=1)
    publisher = Publisher(producer)  # type: ignore[arg-type]
    await publisher.publish("t", b"k", b"v")
    publisher.boundary(50)
    await publisher.submit()
    refuse(producer.sent[0][2])
    await asyncio.sleep(0)
    assert isinstance(publisher.failure, KafkaError)
    with pytest.raises(KafkaError):
        await publisher.publish("t", b"k", b"v")
    assert publisher.acks.confirmed == 0
    assert not await publisher.drain(0.1)


async def test_add_queues_without_waiting_only_what_needs_no_waiting() -> None:
    producer = Producer(partitions=1)
    publisher = Publisher(producer, max_unacknowledged=4)  # type: ignore[arg-type]
    assert publisher.add("t", b"k", b"v") is None, "partitions of a topic not seen yet: publish asks the broker"
    assert publisher.unacknowledged == 0
    assert await publisher.publish("t", b"k", b"v") == ("t", 0)
    assert publisher.add("t", b"k", b"v") == ("t", 0) and publisher.unacknowledged == 2
    assert publisher.add("t", b"k", b"x" * 20_000) is None, "the open batch is full: publish hands it over"
    assert publisher.unacknowledged == 2 and not producer.sent
    assert publisher.add("t", b"k", b"v") is None, "the open batch was closed by the refused append"
    assert await publisher.publish("t", b"k", b"v") == ("t", 0) and len(producer.sent) == 1
    assert publisher.add("t", b"k", b"v") is None, "the fourth unacknowledged event: publish submits and waits"
