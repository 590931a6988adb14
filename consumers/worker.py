"""`cdc worker`: a consumer-group member that reads the mapped topics and runs the engine on each batch.

Each batch: decode → route poison (`consumers.poison`) → process (`consumers.batch`) → commit (`consumers.offsets`:
the tracked offsets in the batch's state transaction, Kafka's after it). Parked changes (lookups waiting for a
coupling, `cdc retry`) are retried by a side task (`consumers.parking.retry_due`, `consumers.side_tasks`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import socket
import time

import asyncpg
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from cdc import database
from cdc.backoff import Backoff, retry
from cdc.database import CONNECTION_LOST
from cdc.errors import CdcError, ConfigError, ServiceUnavailable
from cdc.instruments import observe_apply_latency
from cdc.mapping.load import load_mapping_file
from cdc.mapping.model import MappingFile
from cdc.mapping.validate import validate_against_catalog
from cdc.settings import Settings, System
from cdc.state import record_log
from cdc.state.couplings import AlreadyCoupled
from cdc.state.migrate import migrate
from cdc.state.parking import ParkedEvent
from consumers import parking, side_tasks
from consumers.batch import Engine
from consumers.decisions.outcome import Decision
from consumers.incoming import Echo, Incoming, Poison, Routes, decode, interpret, system_of
from consumers.offsets import Consumed, OffsetTracker, Record, offsets_after
from consumers.poison import DeadLetter, PoisonHandler
from consumers.systems import SystemLink, open_links
from schemas.change_event import Decoded, NotAChange

log = structlog.get_logger()

MISSING_FIELD_COLUMN = re.compile(r"mapping \S+, field .*: (erp|crm) column '[^']*' not found in table \S+$")
"""A mapped field's column that is gone: that field's records fail one by one, the worker runs on."""
BATCH_TRIES = 6
"""A batch that collided with another worker's is tried up to six times."""


def batch_backoff() -> Backoff:
    """The waits between a collided batch's tries: 0.05, 0.1, then 0.2 s (0.75 s in all at most), each shortened by
    up to a fifth at random so two workers that collided do not retry in step."""
    return Backoff(first=0.05, most=0.2)


def _collided(exc: BaseException) -> bool:
    """A deadlock, a serialization failure or a record coupled meanwhile by another worker: worth another try."""
    return isinstance(exc, (asyncpg.DeadlockDetectedError, asyncpg.SerializationError, asyncpg.UniqueViolationError,
                            AlreadyCoupled))


class Worker:
    def __init__(self, settings: Settings, mapping_file: MappingFile | None = None) -> None:
        self.settings = settings
        self.mapping_file = mapping_file or load_mapping_file(settings.mapping_file)
        self.routes = Routes(settings, self.mapping_file)
        self.name = f"{socket.gethostname()}-{os.getpid()}"
        self.links: dict[System, SystemLink] = {}
        self.state: asyncpg.Connection | None = None
        self.announcer: asyncpg.Connection | None = None
        """A second state connection, never in a transaction: creations are announced on it before they are written."""
        self.engine: Engine | None = None
        self.consumer: AIOKafkaConsumer | None = None
        self.producer: AIOKafkaProducer | None = None
        self.offsets: OffsetTracker | None = None
        self.poison: PoisonHandler | None = None
        self.processed = 0
        self.lock = asyncio.Lock()

    async def start(self) -> None:
        s = self.settings
        self.state = await database.connect(s.dsn("state"), role="state")
        await migrate(self.state)
        self.announcer = await database.connect(s.dsn("state"), role="state")
        self.links = await open_links(s, self.mapping_file)
        problems = validate_against_catalog(self.mapping_file, self.links["erp"].tables, self.links["crm"].tables)
        # A mapped column that is gone (dropped, renamed) fails the records that need it, each as a job error;
        # the other records and mappings go on. Anything else (a table missing, a key) stops the worker.
        columns = [p for p in problems if MISSING_FIELD_COLUMN.match(p)]
        for problem in columns:
            log.error("mapped column missing: changes that need it become errors", problem=problem)
        problems = [p for p in problems if p not in columns]
        if problems:
            raise ConfigError("; ".join(problems[:5]))
        self.engine = Engine(s, self.mapping_file, self.links)
        from cdc.topics.admin import ensure_topics

        await ensure_topics(s, self.routes.topics + [s.dead_letter_topic])
        self.producer = AIOKafkaProducer(bootstrap_servers=s.kafka_bootstrap, enable_idempotence=True,
                                         linger_ms=5)
        await self.producer.start()
        self.poison = PoisonHandler(self.producer, s.dead_letter_topic)
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=s.kafka_bootstrap, group_id=s.consumer_group, enable_auto_commit=False,
            auto_offset_reset="earliest", max_poll_records=s.worker_batch_size, client_id=self.name,
            fetch_max_wait_ms=s.worker_fetch_wait_ms,
            session_timeout_ms=s.worker_session_timeout_ms, heartbeat_interval_ms=3000,
            max_poll_interval_ms=600000, group_instance_id=s.worker_instance)
        self.offsets = OffsetTracker(s, self.consumer, self.name)
        self.consumer.subscribe(self.routes.topics, listener=self.offsets.listener())
        await self.consumer.start()
        log.info("worker started", worker=self.name, topics=len(self.routes.topics), group=s.consumer_group,
                 origins={k: v.origin for k, v in self.links.items()})

    async def stop(self) -> None:
        if self.offsets is not None:
            await self.offsets.close()
        for closer in (self.consumer and self.consumer.stop, self.producer and self.producer.stop):
            if closer is not None:
                with contextlib.suppress(Exception):
                    await closer()
        for link in self.links.values():
            with contextlib.suppress(Exception):
                await link.close()
        for conn in (self.state, self.announcer):
            if conn is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(conn.close(), 5)
        self.consumer = self.producer = self.state = self.announcer = self.engine = None
        self.offsets = self.poison = None
        self.links = {}

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop`. Problems at start-up raise (ConfigError, ServiceUnavailable); once running, a lost
        database connection or a broker failure is logged and everything is opened again with backoff (the state
        database's tracked offsets say where to resume, so nothing is lost or applied twice)."""
        await self.start()
        delay = Backoff()
        while True:
            try:
                await self._consume(stop)
                return
            except TROUBLE as exc:
                pause = delay.next()
                log.warning("worker lost its connection to the database or the broker; reconnecting",
                            worker=self.name, error=_one_line(exc), retry_in=pause)
                await self.stop()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), pause)
            while not stop.is_set():
                try:
                    await self.start()
                    log.info("worker reconnected", worker=self.name)
                    break
                except TROUBLE as exc:
                    pause = delay.next()
                    log.warning("worker cannot reconnect yet", worker=self.name, error=_one_line(exc),
                                retry_in=pause)
                    await self.stop()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), pause)
            if stop.is_set():
                return
            delay.reset()

    async def _consume(self, stop: asyncio.Event) -> None:
        try:
            await side_tasks.supervise(self._consume_batches, [self._retry_parked], stop)
        finally:
            if stop.is_set():
                await self.stop()

    async def _consume_batches(self, halt: asyncio.Event) -> None:
        """Batch after batch until `halt` (stop, or a side task failed); the retrier waits for the batch's lock."""
        while not halt.is_set():
            assert self.consumer is not None
            batches = await self._gather()
            if batches:
                async with self.lock:
                    await self._handle(batches)

    async def _gather(self) -> dict[TopicPartition, list]:
        """One batch: what the consumer holds now, then, while short of a full batch, what arrives in the next
        `CDC_WORKER_LINGER_MS` — a trickle of changes is decided together, not with one round of statements each."""
        assert self.consumer is not None
        size = self.settings.worker_batch_size
        batches = await self.consumer.getmany(timeout_ms=200, max_records=size)
        count = sum(len(records) for records in batches.values())
        deadline = time.monotonic() + self.settings.worker_linger_ms / 1000
        while 0 < count < size:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            more = await self.consumer.getmany(timeout_ms=max(1, int(left * 1000)), max_records=size - count)
            for tp, records in more.items():
                batches.setdefault(tp, []).extend(records)
                count += len(records)
        return batches

    async def _handle(self, batches: dict[TopicPartition, list]) -> None:
        """Decode → route poison → process → commit."""
        assert self.state and self.offsets and self.poison
        records, consumed = await self.offsets.fresh(self.state, batches)
        items, poisoned = self._route(records)
        await self.poison.handle(self.state, poisoned)
        results = await self._process(items, consumed)
        self.processed += len(results)
        now = time.time()
        for item, decision in results:
            if decision.writes and item.event.source.ts_ms and not item.event.replay:
                observe_apply_latency(now - item.event.source.ts_ms / 1000)
        await self.offsets.commit(consumed)

    def _route(self, records: list[tuple[TopicPartition, Record]]
               ) -> tuple[list[Incoming], list[tuple[DeadLetter, Poison]]]:
        """Each fresh record decoded: its changes to process, or poison; what is not a change or the sync's own
        write read back is skipped."""
        items: list[Incoming] = []
        poisoned: list[tuple[DeadLetter, Poison]] = []
        for tp, record in records:
            decoded = decode(record.value)
            if isinstance(decoded, NotAChange):
                _skipped(decoded, tp.topic)
                continue
            found: list | Poison | Echo
            if isinstance(decoded, Poison):
                found = Poison(decoded.reason, self.routes.by_topic.get(tp.topic), None, None)
            else:
                found = self._interpret(decoded, tp.topic)
                event, payload = decoded.event, decoded.payload
            if isinstance(found, Echo):
                log.debug("the sync's own write read back: skipped", topic=tp.topic, system=found.system,
                          table=found.table, key=found.key, origin=found.origin)
                continue
            if isinstance(found, Poison):
                poisoned.append((DeadLetter(tp.topic, tp.partition, record.offset, record.key, record.value,
                                            found.reason), found))
                continue
            for mapping, change in found:
                items.append(Incoming(event, payload, mapping, change, tp.topic, tp.partition, record.offset))
        return items, poisoned

    async def _process(self, items: list[Incoming], consumed: Consumed) -> list[tuple[Incoming, Decision]]:
        """Process a batch; one that needs more locks than PostgreSQL's lock table holds is processed in halves
        (each half commits its own offsets), down to single records, instead of failing again on every retry."""
        try:
            return await self._process_whole(items, consumed)
        except asyncpg.OutOfMemoryError as exc:
            reason = str(exc).splitlines()[0]
            if len(items) < 2:
                raise CdcError(f"PostgreSQL ran out of shared memory deciding a single record ({reason}): raise "
                               "max_locks_per_transaction in the state database's server") from None
            log.warning("batch too large for the lock table: processed in halves", records=len(items),
                        error=reason)
            half = len(items) // 2
            head, tail = items[:half], items[half:]
            return [*await self._process(head, offsets_after(head) if consumed else {}),
                    *await self._process(tail, consumed)]

    async def _process_whole(self, items: list[Incoming], consumed: Consumed) -> list[tuple[Incoming, Decision]]:
        engine, state, announcer = self.engine, self.state, self.announcer
        assert engine and state and announcer
        retried = 0

        def note(exc: BaseException, wait: float) -> None:
            nonlocal retried
            retried += 1
            log.warning("batch retried", error=str(exc).splitlines()[0], attempt=retried, wait=round(wait, 3))

        # Another worker coupled a record this batch wanted: the retry decides with that coupling known.
        return await retry(lambda: engine.process(state, items, announcer=announcer, consumed=consumed,
                                                  group=self.settings.consumer_group),
                           retriable=_collided, attempts=BATCH_TRIES, backoff=batch_backoff(), on_retry=note)

    def _interpret(self, decoded: Decoded, topic: str | None, system: System | None = None
                   ) -> list | Poison | Echo:
        event = decoded.event
        system = system or system_of(event, topic, self.routes)
        if system is None:
            return Poison(f"cannot tell which system topic {topic!r} belongs to", None, event.source.table, None)
        mappings = self.mapping_file.for_table(system, event.source.table)
        return interpret(decoded, system, self.links[system].tables, mappings,
                         origin_prefix=self.settings.replication_origin_prefix)

    async def _retry_parked(self, stop: asyncio.Event) -> None:
        assert self.state is not None
        conn = await database.connect(self.settings.dsn("state"), role="state")
        pruned_at = 0.0
        try:
            while not stop.is_set():
                try:
                    if time.monotonic() - pruned_at > PRUNE_INTERVAL:
                        pruned_at = time.monotonic()
                        await record_log.prune(conn, self.settings.record_log_keep)
                    handled = await self._retry_once(conn)
                except TROUBLE:
                    raise  # the consume loop ends after its batch, and everything is opened again
                except Exception as exc:  # noqa: BLE001 - the retrier reports and keeps going
                    log.error("parked-event retry failed", error=str(exc).splitlines()[0] if str(exc) else repr(exc))
                    handled = 0
                if not handled:
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(stop.wait(), 1.0)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 5)

    async def _retry_once(self, conn: asyncpg.Connection) -> int:
        """Retry due parked events (`consumers.parking.retry_due`), between batches."""
        assert self.engine and self.state
        async with self.lock:
            return await parking.retry_due(conn, self.state, self._parked_item, lambda items: self._process(items, {}))

    def _parked_item(self, p: ParkedEvent) -> Incoming | str:
        """The parked change ready to process again, or why it cannot be."""
        return parking.parked_item(p, self.mapping_file, lambda decoded, system: self._interpret(decoded, None, system))


def _skipped(record: NotAChange, topic: str) -> None:
    """Records that change no row: nothing to do, a truncate is worth a warning (its rows' deletes never come)."""
    if record.kind == "truncate":
        log.warning("truncate not applied: consumers see no deletes for the emptied rows (run a full sync of the "
                    "mapping if the other side should follow)", topic=topic, table=record.table)
    elif record.kind != "tombstone":
        log.debug("not a change: skipped", topic=topic, kind=record.kind)


PRUNE_INTERVAL = 60.0
"""Seconds between prunings of the record log (to `CDC_RECORD_LOG_KEEP` entries)."""

TROUBLE = (*CONNECTION_LOST, ServiceUnavailable, KafkaError)
"""Lost connections and broker failures: the worker opens everything again rather than exiting."""


def _one_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


async def run_worker(settings: Settings, stop: asyncio.Event) -> None:
    await Worker(settings).run(stop)


def dumps(obj: object) -> str:
    return json.dumps(obj, default=str)
