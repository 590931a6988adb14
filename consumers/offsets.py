"""The worker's offsets (in the spirit of quix-streams' `Checkpoint`): where each assigned partition resumes, what
a batch consumed, and Kafka's commit that follows.

The truth is the state database's tracked offsets (`cdc.state.offsets`), stored by the engine in the batch's own
state transaction (docs/exactly-once.md); Kafka's committed offsets follow, best effort, in the background, one
commit in flight at a time. On assignment a partition resumes at the later of the two.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import TypeAlias

import asyncpg
import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError

from cdc import database
from cdc.settings import Settings
from cdc.state import offsets as tracked_offsets
from consumers.incoming import Incoming

log = structlog.get_logger()

Consumed = dict[tuple[str, int], int]
"""Per (topic, partition), the next offset once a batch is processed."""
Record: TypeAlias = ConsumerRecord[bytes, bytes]
"""A record as the consumer hands it."""


class OffsetTracker:
    """One consumer's positions, from its start to its stop."""

    def __init__(self, settings: Settings, consumer: AIOKafkaConsumer, worker: str) -> None:
        self.settings = settings
        self.consumer = consumer
        self.worker = worker
        self.resume_at: Consumed = {}
        """Per assigned partition, the tracked offset it resumed at: records before it were already processed."""
        self.closed = False
        self._committing: asyncio.Task[None] | None = None

    def listener(self) -> ConsumerRebalanceListener:
        return _Resume(self)

    async def fresh(self, state: asyncpg.Connection, batches: Mapping[TopicPartition, list[Record]]
                    ) -> tuple[list[tuple[TopicPartition, Record]], Consumed]:
        """The records not processed before (in partition order), and what the batch consumes: per partition, the
        offset after its last fresh record."""
        unknown = sorted({tp.topic for tp in batches if (tp.topic, tp.partition) not in self.resume_at})
        if unknown:  # the assignment listener could not read the tracked offsets (e.g. the database restarted)
            tracked = await tracked_offsets.load(state, self.settings.consumer_group, unknown)
            for tp in batches:
                self.resume_at.setdefault((tp.topic, tp.partition), tracked.get((tp.topic, tp.partition), 0))
        records: list[tuple[TopicPartition, Record]] = []
        consumed: Consumed = {}
        for tp, batch in batches.items():
            for record in batch:
                if record.offset < self.resume_at.get((tp.topic, tp.partition), 0):
                    continue  # processed before: its effects and counters are committed with the tracked offset
                consumed[(tp.topic, tp.partition)] = record.offset + 1
                records.append((tp, record))
        return records, consumed

    async def commit(self, consumed: Consumed) -> None:
        """Kafka's committed offsets follow the state database's (which already hold the batch's position), while
        the next batch is gathered: a broker round trip less in each batch's path. One commit in flight at a time,
        in order."""
        if self._committing is not None:
            await self._committing  # usually done by now
        offsets = {TopicPartition(t, p): o for (t, p), o in consumed.items()}
        self._committing = asyncio.create_task(_commit(self.consumer, offsets))

    async def close(self) -> None:
        """Wait (up to 5 s) for the commit in flight; assignments after this are not followed."""
        if self._committing is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._committing, 5)
            self._committing = None
        self.closed = True


async def _commit(consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]) -> None:
    try:
        await consumer.commit(offsets)
    except (CommitFailedError, KafkaError) as exc:
        log.warning("offset commit failed; the state database holds the position", error=str(exc))
    except Exception as exc:  # noqa: BLE001 - e.g. the consumer stopped meanwhile; nothing depends on it
        log.debug("offset commit skipped", error=(str(exc).strip().splitlines() or [type(exc).__name__])[0])


def offsets_after(items: list[Incoming]) -> Consumed:
    """The next offset of each partition once `items` (a prefix of a batch, per partition) are processed."""
    after: Consumed = {}
    for item in items:
        if item.topic is not None and item.offset is not None:
            where = (item.topic, item.partition or 0)
            after[where] = max(after.get(where, 0), item.offset + 1)
    return after


class _Resume(ConsumerRebalanceListener):
    """On assignment, resume each partition at the state database's tracked offset when it is ahead."""

    def __init__(self, tracker: OffsetTracker) -> None:
        self.tracker = tracker

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        for tp in revoked:
            self.tracker.resume_at.pop((tp.topic, tp.partition), None)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        t = self.tracker
        if not assigned or t.closed:
            return
        conn = await database.connect(t.settings.dsn("state"), role="state")
        try:
            tracked = await tracked_offsets.load(conn, t.settings.consumer_group, sorted({tp.topic for tp in assigned}))
        finally:
            await conn.close()
        for tp in assigned:
            position = tracked.get((tp.topic, tp.partition))
            t.resume_at[(tp.topic, tp.partition)] = position or 0
            if position is not None:
                committed = await t.consumer.committed(tp)
                if committed is None or committed < position:
                    t.consumer.seek(tp, position)
        log.info("partitions assigned", worker=t.worker, count=len(assigned))
