"""Reading offsets from the broker: each partition's beginning and end, and the consumer group's committed
position. One long-lived (group-less) consumer and one admin client, re-created after a failure; every call is
bounded by `timeout` seconds."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from cdc.backoff import retry
from cdc.settings import Settings
from cdc.topics.broker import broker_error, retriable

TP = tuple[str, int]


@dataclass(frozen=True)
class KafkaReading:
    existing: set[str]  # of the topics asked for, those the broker has
    beginning: dict[TP, int] = field(default_factory=dict)
    end: dict[TP, int] = field(default_factory=dict)
    committed: dict[TP, int] = field(default_factory=dict)  # the group's committed offsets (absent: none)

    def partitions(self, topic: str) -> list[int]:
        return sorted(p for t, p in self.end if t == topic)


class KafkaUnavailable(Exception):
    """The broker did not answer in time; the message is safe to show."""


class KafkaOffsets:
    def __init__(self, settings: Settings, *, timeout: float = 4.0, client_id: str = "cdc-dashboard") -> None:
        self.settings = settings
        self.timeout = timeout
        self.client_id = client_id
        self._consumer: AIOKafkaConsumer | None = None
        self._admin: AIOKafkaAdminClient | None = None
        self._lock = asyncio.Lock()
        self.closed = False

    async def _clients(self) -> tuple[AIOKafkaConsumer, AIOKafkaAdminClient]:
        if self.closed:
            raise KafkaUnavailable("the offset reader is closed")
        if self._consumer is None or self._admin is None:
            await self._release()
            timeout_ms = int(self.timeout * 1000)
            consumer = AIOKafkaConsumer(bootstrap_servers=self.settings.kafka_bootstrap, client_id=self.client_id,
                                        enable_auto_commit=False, request_timeout_ms=max(timeout_ms, 1000),
                                        metadata_max_age_ms=60_000, connections_max_idle_ms=300_000)
            admin = AIOKafkaAdminClient(bootstrap_servers=self.settings.kafka_bootstrap, client_id=self.client_id,
                                        request_timeout_ms=max(timeout_ms, 1000))
            try:
                await asyncio.wait_for(consumer.start(), self.timeout)
                await asyncio.wait_for(admin.start(), self.timeout)
            except BaseException:
                with contextlib.suppress(Exception):
                    await consumer.stop()
                with contextlib.suppress(Exception):
                    await admin.close()
                raise
            self._consumer, self._admin = consumer, admin
        return self._consumer, self._admin

    async def read(self, topics: list[str], group: str | None) -> KafkaReading:
        """Offsets of every partition of `topics` that exists, and `group`'s committed offsets in them."""
        async with self._lock:
            try:
                return await asyncio.wait_for(self._read(topics, group), self.timeout * 2)
            except Exception as exc:  # noqa: BLE001 - any failure: reconnect next time
                await self._release()
                if isinstance(exc, TimeoutError):
                    raise KafkaUnavailable(f"Kafka at {self.settings.kafka_bootstrap} did not answer within "
                                           f"{self.timeout * 2:g} s") from None
                raise KafkaUnavailable(f"Kafka at {self.settings.kafka_bootstrap}: {broker_error(exc)}") from None

    async def _read(self, topics: list[str], group: str | None) -> KafkaReading:
        consumer, admin = await self._clients()
        known = set(await admin.list_topics())
        existing = {t for t in topics if t in known}
        # Describe only topics that exist: a metadata request naming a missing topic may create it.
        described = await admin.describe_topics(sorted(existing)) if existing else []
        tps = [TopicPartition(d["topic"], p["partition"]) for d in described if d.get("error_code") == 0
               for p in sorted(d.get("partitions", []), key=lambda p: p["partition"])]
        if not tps:
            return KafkaReading(existing)
        beginning, end = await asyncio.gather(consumer.beginning_offsets(tps), consumer.end_offsets(tps))
        committed: dict[TP, int] = {}
        if group:
            # a broker that does not serve groups yet (fresh, or its coordinator moving) answers again shortly
            found = await retry(lambda: admin.list_consumer_group_offsets(group, partitions=tps),
                                retriable=retriable, timeout=self.timeout)
            committed = {(tp.topic, tp.partition): meta.offset for tp, meta in found.items()
                         if meta is not None and meta.offset is not None and meta.offset >= 0}
        return KafkaReading(existing, {(tp.topic, tp.partition): o for tp, o in beginning.items()},
                            {(tp.topic, tp.partition): o for tp, o in end.items()}, committed)

    async def close(self) -> None:
        """Release the clients for good (a read afterwards fails instead of connecting again)."""
        self.closed = True
        await self._release()

    async def _release(self) -> None:
        consumer, admin = self._consumer, self._admin
        self._consumer = self._admin = None
        if consumer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(consumer.stop(), self.timeout)
        if admin is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(admin.close(), self.timeout)
