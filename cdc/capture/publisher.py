"""Publishing change events with the idempotent producer, and knowing which of them the broker acknowledged.

Events are appended to one record batch per topic partition (partition = Kafka's default murmur2 of the key, as
the Java client and aiokafka compute it) and a full batch is handed to the producer: much cheaper per event than
`producer.send`, with the same ordering (one partition's batches go out in order; the producer is idempotent).

Publishing does not wait for acknowledgements: they arrive while capture reads on, and each one is passed to the
`Acknowledgements` (which position may be reported to PostgreSQL as flushed). Past `max_unacknowledged` events
published and not yet acknowledged, `publish` waits — that bounds memory for a transaction of any size.
"""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from cdc.capture.acks import Acknowledgements
from cdc.topics.partitioner import partition_for
from schemas.change_event import SCHEMA_VERSION, SCHEMA_VERSION_HEADER

HEADERS = [(SCHEMA_VERSION_HEADER, str(SCHEMA_VERSION).encode())]


class Publisher:
    """`publish` events and `submit` the open batches; `boundary` marks where a transaction ends; `failure` is
    the first batch the broker refused (the caller starts over from the last confirmed position)."""

    def __init__(self, producer: AIOKafkaProducer, acks: Acknowledgements | None = None,
                 max_unacknowledged: int = 20_000) -> None:
        self.producer = producer
        self.acks = acks or Acknowledgements()
        self.max_unacknowledged = max_unacknowledged
        self._partitions: dict[str, int] = {}
        self._open: dict[tuple[str, int], list] = {}  # (topic, partition) -> [BatchBuilder, number, events]
        self.unacknowledged = 0  # events published (open or submitted) and not acknowledged yet
        self.acknowledged = 0  # events acknowledged since this publisher started
        self.failure: BaseException | None = None
        self._room = asyncio.Event()
        self._room.set()

    def reset(self, acks: Acknowledgements) -> None:
        """Start over after a failure: forget open batches and what is in flight (it is read and published again)."""
        self.acks = acks
        self._open = {}
        self._partitions = {}
        self.unacknowledged = 0
        self.failure = None
        self._room.set()

    def add(self, topic: str, key: bytes, value: bytes) -> tuple[str, int] | None:
        """Queue one event if that needs no waiting (the topic's partitions are known, its batch has room, the limit
        of unacknowledged events is not reached): the (topic, partition) it goes to. None, having queued nothing,
        when it needs `publish`. The hot path of capture: no coroutine per event."""
        count = self._partitions.get(topic)
        if count is None or self.failure is not None or self.unacknowledged + 1 >= self.max_unacknowledged:
            return None
        where = (topic, partition_for(key, count))
        batch = self._open.get(where)
        if batch is None or batch[0].append(key=key, value=value, timestamp=None, headers=HEADERS) is None:
            return None  # a full batch is closed by the failed append: `publish` submits it
        batch[2] += 1
        self.unacknowledged += 1
        return where

    async def publish(self, topic: str, key: bytes, value: bytes) -> tuple[str, int]:
        """Queue one event, waiting when needed (see `add`); the (topic, partition) it goes to."""
        return self.add(topic, key, value) or await self._publish_waiting(topic, key, value)

    async def _publish_waiting(self, topic: str, key: bytes, value: bytes) -> tuple[str, int]:
        if self.failure is not None:
            raise self.failure
        count = self._partitions.get(topic)
        if count is None:
            count = self._partitions[topic] = len(await self.producer.partitions_for(topic))
        where = (topic, partition_for(key, count))
        batch = self._open.get(where)
        if batch is None:
            batch = self._open[where] = [self.producer.create_batch(), self.acks.opened(), 0]
        if batch[0].append(key=key, value=value, timestamp=None, headers=HEADERS) is None:  # full
            await self._submit(where)
            batch = self._open[where] = [self.producer.create_batch(), self.acks.opened(), 0]
            if batch[0].append(key=key, value=value, timestamp=None, headers=HEADERS) is None:
                raise ValueError(f"an event of {len(value)} bytes does not fit in a record batch ({topic})")
        batch[2] += 1
        self.unacknowledged += 1
        if self.unacknowledged >= self.max_unacknowledged:
            await self.submit()
            while self.unacknowledged >= self.max_unacknowledged and self.failure is None:
                self._room.clear()
                await self._room.wait()
            if self.failure is not None:
                raise self.failure
        return where

    def boundary(self, lsn: int, commit_ts: int | None = None) -> None:
        """Everything published so far belongs to transactions that end at or before `lsn`."""
        self.acks.boundary(lsn, commit_ts)

    async def submit(self) -> None:
        """Hand every open batch to the producer (without waiting for acknowledgements)."""
        for where in list(self._open):
            await self._submit(where)

    async def _submit(self, where: tuple[str, int]) -> asyncio.Future:
        builder, number, events = self._open.pop(where)
        acks = self.acks
        future = await self.producer.send_batch(builder, where[0], partition=where[1])
        future.add_done_callback(lambda f: self._settled(f, acks, number, events))
        return future

    def _settled(self, future: asyncio.Future, acks: Acknowledgements, number: int, events: int) -> None:
        if acks is not self.acks:  # from before a reset: what it carried is published again anyway
            if not future.cancelled():
                future.exception()  # retrieved
            return
        # a cancelled delivery (the producer stopped under it) is a failed one, not a cancellation of capture
        failure = future.exception() if not future.cancelled() else KafkaError("record batch delivery cancelled")
        if failure is not None:
            self.failure = self.failure or failure
        else:
            acks.acknowledged(number)
            self.acknowledged += events
        self.unacknowledged -= events
        if self.unacknowledged < self.max_unacknowledged or failure is not None:
            self._room.set()

    async def drain(self, timeout: float) -> bool:
        """Submit the open batches and wait (at most `timeout` s) until everything is acknowledged or refused."""
        await self.submit()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.acks.unacknowledged and self.failure is None:
            left = deadline - loop.time()
            if left <= 0:
                return False
            self._room.clear()
            try:
                await asyncio.wait_for(self._room.wait(), min(left, 0.1))
            except TimeoutError:
                pass
        return self.failure is None
