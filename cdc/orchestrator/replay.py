"""Replay events: rows published into the topics capture writes, marked so the worker treats them as replays.

Each event is a `ChangeEvent` with op "r" whose `replay` names the run, the job its outcome is counted on, the
mapping that handles it and whether it may create and couple an uncoupled record. `encode` builds the same bytes
as `ChangeEvent(...).to_wire()` without the model (the hot path; a unit test checks they are equal).

Keys are written the way the topic's producer writes its own (`target.key_format`, learnt by
`cdc.topics.key_formats`): in a topic a Debezium connector writes with embedded schemas, a replayed row then lands on
the partition of that row's changes.

The publisher sends without awaiting each record (an idempotent producer keeps each partition in order) and
remembers, per partition, the offset of the last record it published. The worker records the next offset it
will process per partition in `cdc.tracked_offsets`, in the transaction that holds the batch's effects: once every
published partition's tracked offset is past that last record, the replay is processed, counters included.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer

from cdc.errors import CdcError
from cdc.state import offsets
from cdc.values import canonical
from schemas.change_event import CONNECTOR, SCHEMA_VERSION, SCHEMA_VERSION_HEADER
from schemas.key_text import encode as encode_key
from schemas.record_key import PLAIN, KeyFormat

HEADERS = [(SCHEMA_VERSION_HEADER, str(SCHEMA_VERSION).encode())]
TopicPartition = tuple[str, int]

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


@dataclass(frozen=True)
class ReplayTarget:
    """Where the replays of one step go and how they are labelled."""

    topic: str
    system: str
    database: str
    schema: str
    table: str
    key_columns: tuple[str, ...]
    run_id: str
    job_id: str
    mapping: str
    create: bool
    source_name: str = ""
    key_format: KeyFormat = PLAIN


def json_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row as JSON-able values (canonical: decimals as text, times as ISO-8601, UUIDs as text)."""
    return {name: canonical(value) for name, value in row.items()}


def encode(target: ReplayTarget, row: Mapping[str, Any], now_ms: int) -> tuple[bytes, bytes]:
    """(key, value) of the replay event of `row`."""
    after = json_row(row)
    # a numeric key column as PostgreSQL prints it (its scale kept), as capture puts it on the Kafka key: the
    # replay of a row then hashes to the partition of its live changes
    columns = target.key_columns
    if len(columns) == 1:
        column = columns[0]
        value = row[column]
        key = {column: str(value) if type(value) is Decimal else after[column]}
        key_text = str(after[column])
    else:
        key = {c: str(row[c]) if type(row[c]) is Decimal else after[c] for c in columns}
        key_text = encode_key([str(after[c]) for c in columns])
    event = {
        "op": "r",
        "before": None,
        "after": after,
        "source": {
            "version": "1", "connector": CONNECTOR, "name": target.source_name, "db": target.database,
            "schema": target.schema, "table": target.table, "ts_ms": now_ms, "snapshot": "true", "txId": None,
            "lsn": None, "commit_lsn": None, "sequence": None,
        },
        "ts_ms": now_ms,
        "transaction": None,
        "event_id": f"replay:{target.run_id}:{target.mapping}:{target.system}:{key_text}",
        "system": target.system,
        "replay": {"run_id": target.run_id, "job_id": target.job_id, "mapping": target.mapping,
                   "create": target.create},
        "schema_version": SCHEMA_VERSION,
    }
    return target.key_format.encode(key), _dumps(event).encode()


class Publisher:
    """Sends replay events; knows the last acknowledged offset per partition."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer
        self.sent = 0
        self._answered = 0
        self.last: dict[TopicPartition, int] = {}
        self._failed: BaseException | None = None
        self._settled = asyncio.Event()
        self._settled.set()

    def reset(self) -> None:
        """Start a new step: forget the partitions of the previous one."""
        self.last = {}

    async def publish(self, target: ReplayTarget, rows: list[dict[str, Any]]) -> None:
        now_ms = int(time.time() * 1000)
        for row in rows:
            key, value = encode(target, row, now_ms)
            future = await self.producer.send(target.topic, value, key, headers=HEADERS)
            self.sent += 1
            self._settled.clear()
            future.add_done_callback(self._done)
        if self._failed is not None:
            raise self._error()

    def _done(self, future: asyncio.Future) -> None:
        self._answered += 1
        if future.cancelled():
            self._failed = self._failed or asyncio.CancelledError("a replay record was cancelled")
        elif future.exception() is not None:
            self._failed = self._failed or future.exception()
        else:
            meta = future.result()
            tp = (meta.topic, meta.partition)
            if meta.offset > self.last.get(tp, -1):
                self.last[tp] = meta.offset
        if self._answered >= self.sent:
            self._settled.set()

    async def flush(self) -> dict[TopicPartition, int]:
        """Wait for every acknowledgement; the last offset per partition of this step."""
        await self.producer.flush()
        await self._settled.wait()
        if self._failed is not None:
            raise self._error()
        return dict(self.last)

    def _error(self) -> CdcError:
        return CdcError(f"Kafka did not take a replay record: {self._failed}")


def pending(tracked: Mapping[TopicPartition, int], last: Mapping[TopicPartition, int]) -> dict[TopicPartition, int]:
    """The partitions whose last replay record the worker has not processed yet (tracked next offset <= it)."""
    return {tp: offset for tp, offset in last.items() if tracked.get(tp, 0) <= offset}


class Stalled(CdcError):
    """The worker stopped making progress on the replayed records."""


async def wait_processed(state: asyncpg.Connection, group: str, last: Mapping[TopicPartition, int], *,
                         stop: asyncio.Event, stall_timeout: float,
                         check: Callable[[], None] | None = None,
                         on_poll: Callable[[], Awaitable[None]] | None = None,
                         interval: float = 0.25) -> bool:
    """Wait until the worker group has processed past `last` on every partition; False when `stop` was set.

    `check` raises when the worker cannot finish (e.g. the in-process worker died); Stalled when no partition
    moved for `stall_timeout` seconds.
    """
    topics = sorted({topic for topic, _ in last})
    previous: dict[TopicPartition, int] | None = None
    moved_at = time.monotonic()
    while True:
        tracked = await offsets.load(state, group, topics)
        if on_poll is not None:
            await on_poll()
        left = pending(tracked, last)
        if not left:
            return True
        if stop.is_set():
            return False
        if check is not None:
            check()
        snapshot = {tp: tracked.get(tp, 0) for tp in left}
        if snapshot != previous:
            previous, moved_at = snapshot, time.monotonic()
        elif time.monotonic() - moved_at > stall_timeout:
            behind = sum(offset + 1 - tracked.get(tp, 0) for tp, offset in left.items())
            raise Stalled(f"the workers of consumer group {group!r} processed nothing for {stall_timeout:.0f} s "
                          f"({behind} replayed record(s) left): is `cdc worker` running and healthy?")
        try:
            await asyncio.wait_for(stop.wait(), interval)
        except TimeoutError:
            pass
