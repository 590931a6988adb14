"""Publishing change events with the idempotent producer and knowing when every one of them is acknowledged.

Events are appended to one record batch per topic partition (partition = Kafka's default murmur2 of the key, as
the Java client and aiokafka compute it) and a full batch is handed to the producer: much cheaper per event than
`producer.send`, with the same ordering (one partition's batches go out in order; the producer is idempotent).
"""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer

from cdc.topics.partitioner import partition_for
from schemas.change_event import SCHEMA_VERSION, SCHEMA_VERSION_HEADER

HEADERS = [(SCHEMA_VERSION_HEADER, str(SCHEMA_VERSION).encode())]


class Publisher:
    """`publish` events, then `flush` to submit the open batches and wait until the broker acknowledged all of
    them (raising the first failure). Past `max_pending` submitted batches, `publish` waits for acknowledgements
    first, which bounds memory for huge transactions without advancing anything."""

    def __init__(self, producer: AIOKafkaProducer, max_pending: int = 256) -> None:
        self.producer = producer
        self.max_pending = max_pending
        self._partitions: dict[str, int] = {}
        self._open: dict[tuple[str, int], object] = {}  # (topic, partition) -> BatchBuilder
        self._pending: list[asyncio.Future] = []
        self.sent = 0

    async def publish(self, topic: str, key: bytes, value: bytes) -> tuple[str, int]:
        """Queue one event; the (topic, partition) it goes to."""
        count = self._partitions.get(topic)
        if count is None:
            count = self._partitions[topic] = len(await self.producer.partitions_for(topic))
        where = (topic, partition_for(key, count))
        batch = self._open.get(where)
        if batch is None:
            batch = self._open[where] = self.producer.create_batch()
        if batch.append(key=key, value=value, timestamp=None, headers=HEADERS) is None:  # full
            await self._submit(where)
            batch = self._open[where] = self.producer.create_batch()
            if batch.append(key=key, value=value, timestamp=None, headers=HEADERS) is None:
                raise ValueError(f"an event of {len(value)} bytes does not fit in a record batch ({topic})")
        self.sent += 1
        return where

    async def _submit(self, where: tuple[str, int]) -> asyncio.Future:
        batch = self._open.pop(where)
        future = await self.producer.send_batch(batch, where[0], partition=where[1])
        self._pending.append(future)
        if len(self._pending) >= self.max_pending:
            await self._await_acks()
        return future

    async def flush(self) -> None:
        for where in list(self._open):
            await self._submit(where)
        await self._await_acks()

    async def _await_acks(self) -> None:
        pending, self._pending = self._pending, []
        failure: BaseException | None = None
        for future in pending:
            try:
                await future
            except Exception as exc:  # the first failure is re-raised once all are settled
                failure = failure or exc
        if failure is not None:
            raise failure

    def discard(self) -> None:
        """Forget unsent batches and unacknowledged sends (after a failure the batch is read and published
        again)."""
        for future in self._pending:
            if future.done() and not future.cancelled():
                future.exception()  # mark retrieved
        self._pending = []
        self._open = {}
        self._partitions = {}
