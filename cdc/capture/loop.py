"""The capture of one system, and `run_capture` for all of them.

Capture streams each system's slot over the replication protocol (`stream.py`): PostgreSQL decodes every WAL
record once and pushes each transaction as it commits. Each change becomes an event appended to a record batch
(`publisher.py`); the batches are handed to the producer as soon as the stream has nothing more buffered, and the
broker's acknowledgements arrive while capture reads on. The position reported to the server as flushed — which is
what lets the slot move — is the end of the last transaction whose events, and all events before them, were
acknowledged (`acks.py`). A crash anywhere means what followed that position is read and published again (at least
once; event ids make the duplicates recognisable).

Two tasks share a session: the reader (stream → decode → publish) and the status task (standby status updates at
least every `status_interval`, heartbeats, the progress file). The status task keeps the server hearing from capture
while the reader waits for a slow or stalled broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg
import psycopg2
import structlog
from aiokafka.errors import KafkaError
from psycopg2.extras import ReplicationMessage

from cdc.backoff import Backoff
from cdc.capture import pgoutput
from cdc.capture.acks import Acknowledgements
from cdc.capture.events import EventEncoder
from cdc.capture.heartbeat import HeartbeatClock, emit_heartbeat
from cdc.capture.lsn import format_lsn
from cdc.capture.pgoutput import Decoder, PgOutputError
from cdc.capture.preflight import check_source
from cdc.capture.progress import Progress, progress_path, write_progress
from cdc.capture.publisher import Publisher
from cdc.capture.replication import SlotInUse, replication_dsn, replication_problem, role_of, where
from cdc.capture.slot import (
    ensure_publication,
    ensure_slot,
    publication_name,
    read_slot,
    slot_error,
    slot_name,
)
from cdc.capture.standby import Silence, next_check, silence, status_interval
from cdc.capture.stream import ReplicationStream
from cdc.capture.tables import captured_tables
from cdc.capture.transactions import Assembler, Boundary, Publish, TableName, Truncated
from cdc.database import CONNECTION_LOST, connect
from cdc.errors import CdcError, ConfigError, ServiceUnavailable
from cdc.mapping.model import MappingFile
from cdc.pair import System
from cdc.settings import Settings
from cdc.topics.admin import ensure_topics
from cdc.topics.producer import STARTUP_TIMEOUT, broker_error, start_producer

log = structlog.get_logger()

SESSION = {"DateStyle": "ISO, YMD", "TimeZone": "UTC", "IntervalStyle": "postgres", "extra_float_digits": "1"}
PROGRESS_EVERY = 1.0  # seconds between progress-file writes
STATUS_TICK = 1.0  # seconds between the status task's rounds (at most; less when the status interval is shorter)
YIELD_EVERY = 256  # messages read in a row before the reader lets the producer, acknowledgements and status run
DRAIN_TIMEOUT = 10.0  # seconds a stopping capture waits for the acknowledgements of what it published
CONNECTION_TROUBLE = (*CONNECTION_LOST, ServiceUnavailable)


def application_name(system: str) -> str:
    return f"cdc-capture-{system}"


async def open_source(settings: Settings, system: System) -> asyncpg.Connection:
    return await connect(settings.dsn(system), role=system,
                         server_settings={**SESSION, "application_name": application_name(system)})


@dataclass(frozen=True)
class Source:
    system: System
    database: str
    slot: str
    publication: str
    tables: list[TableName]
    keys: dict[TableName, tuple[str, ...]]

    @property
    def tables_text(self) -> list[str]:
        return [f"{s}.{t}" for s, t in self.tables]


async def prepare_source(conn: asyncpg.Connection, settings: Settings, system: System,
                         mapping: MappingFile) -> Source:
    """Check the database, then make the publication and the slot match the mapping."""
    logger = log.bind(system=system)
    tables = captured_tables(mapping, system)
    keys = await check_source(conn, system, tables)
    slot, publication = slot_name(settings, system), publication_name(settings, system)
    action = await ensure_publication(conn, publication, tables)
    if action != "unchanged":
        logger.info(f"publication {action}", publication=publication, tables=[f"{s}.{t}" for s, t in tables])
    if await read_slot(conn, slot) is None:
        logger.info("creating replication slot (waits until transactions in progress have finished)", slot=slot)
    state, created = await ensure_slot(conn, slot)
    if created:
        logger.warning("replication slot created: changes committed before now are not captured", slot=slot)
    database = await conn.fetchval("SELECT current_database()")
    return Source(system, database, slot, publication, tables, keys)


class SystemCapture:
    """The running capture of one system: its SQL connection (checks, heartbeats), producer, assembler, stream
    sessions and progress."""

    def __init__(self, settings: Settings, source: Source, conn: asyncpg.Connection, publisher: Publisher) -> None:
        self.settings = settings
        self.source = source
        self.conn: asyncpg.Connection | None = conn
        self.publisher: Publisher | None = publisher
        self.log = log.bind(system=source.system, slot=source.slot)
        self.assembler = Assembler(
            encoder=EventEncoder(source.system, f"{settings.topic_prefix}.{source.system}", source.database),
            topic=lambda table: settings.topic(source.system, table),
            keys=source.keys,
            origin_prefix=settings.replication_origin_prefix,
            decoder=Decoder(),
        )
        self.heartbeat = HeartbeatClock(settings.heartbeat_interval)
        self.progress = Progress(system=source.system, slot=source.slot)
        self._progress_file = progress_path(settings, source.slot)
        self._saved_at = 0.0
        self.confirmed = 0  # everything before it is acknowledged by Kafka, and reported to PostgreSQL as flushed
        self.timeout = 60.0  # the server's wal_sender_timeout (s), read at each session start
        self.interval = status_interval(self.timeout)
        self._waiting = False  # the reader has read everything the server sent and waits for more
        self._transactions = self._skipped = 0
        self._acknowledged_before = 0  # events acknowledged in earlier sessions (publishers are reset per session)

    # -------------------------------------------------------------- one session

    async def session(self, stop: asyncio.Event, on_started: Callable[[], object] | None = None) -> None:
        """Stream the slot until `stop` is set (then publish what was read, report the final position and return)
        or something fails (raised)."""
        conn, publisher = self.conn, self.publisher
        assert conn is not None and publisher is not None
        system, slot = self.source.system, self.source.slot
        state = await read_slot(conn, slot)
        if state is None:
            raise ConfigError(f"replication slot {slot} was dropped while capture ran; start capture again to "
                              "create it (changes committed in between are not captured)")
        self.timeout = await conn.fetchval(
            "SELECT setting::float8 / 1000 FROM pg_catalog.pg_settings WHERE name = 'wal_sender_timeout'")
        self.interval = status_interval(self.timeout)
        start = max(self.confirmed, state.confirmed_flush_lsn or 0)
        dsn = self.settings.dsn(system)
        place = where(dsn, system)
        try:
            stream = await ReplicationStream.open(
                replication_dsn(dsn, system, application_name(system), SESSION), slot, self.source.publication,
                start, status_interval=self.interval)
        except (psycopg2.Error, TimeoutError) as exc:
            raise replication_problem(exc, system=system, role=role_of(dsn, system), slot=slot,
                                      place=place) from None
        self.confirmed = start
        self._acknowledged_before += publisher.acknowledged
        publisher.reset(Acknowledgements(start))
        publisher.acknowledged = 0
        self.assembler.reset()
        self.assembler.published_upto = start
        if on_started is not None:
            on_started()
        self.log.info("streaming", start=format_lsn(start), status_interval=self.interval)
        reader = asyncio.create_task(self._read(stream), name=f"capture-{system}-read")
        status = asyncio.create_task(self._status(stream), name=f"capture-{system}-status")
        stopping = asyncio.create_task(stop.wait())
        try:
            done, _ = await asyncio.wait({reader, status, stopping}, return_when=asyncio.FIRST_COMPLETED)
            for task in (reader, status):
                if task in done:
                    task.result()  # raises what ended it
            reader.cancel()
            status.cancel()
            await asyncio.gather(reader, status, return_exceptions=True)
            if not await publisher.drain(DRAIN_TIMEOUT):
                self.log.warning("stopping before the broker acknowledged everything read; it is published again "
                                 "on the next start", error=None if publisher.failure is None
                                 else broker_error(publisher.failure))
            self._confirm(stream, force=True)
            self._note_progress()
        except psycopg2.Error as exc:
            raise replication_problem(exc, system=system, role=role_of(dsn, system), slot=slot,
                                      place=place) from None
        finally:
            for task in (reader, status, stopping):
                task.cancel()
            await asyncio.gather(reader, status, stopping, return_exceptions=True)
            stream.close()

    async def _read(self, stream: ReplicationStream) -> None:
        """The hot path: every message the server sends, decoded, assembled and published; boundaries marked."""
        publisher = self.publisher
        assert publisher is not None
        read, feed = stream.read, self.assembler.feed
        add, publish, boundary = publisher.add, publisher.publish, publisher.boundary
        count = 0
        while True:
            message = read()
            if message is None:
                await publisher.submit()  # nothing more buffered: what was read goes out now
                message = await self._next(stream)
            count += 1
            if count % YIELD_EVERY == 0:
                await asyncio.sleep(0)
            out = feed(message.data_start, message.payload)
            if out is None:
                continue
            kind = type(out)
            if kind is Publish:
                if add(out.topic, out.key, out.value) is None:
                    await publish(out.topic, out.key, out.value)
            elif kind is Boundary:
                if out.commit_ts is not None and not out.published_before:
                    self._transactions += 1
                    self._skipped += out.origin is not None
                    boundary(out.lsn, out.commit_ts)
                else:
                    boundary(out.lsn)
            elif kind is Truncated:
                for schema, table in out.tables:
                    self.log.warning("truncate not published: consumers see no deletes for the emptied rows",
                                     table=f"{schema}.{table}", lsn=out.lsn)

    async def _next(self, stream: ReplicationStream) -> ReplicationMessage:
        """Wait for the server's next message; ask it for a reply after half its timeout of silence, give up after
        all of it (the connection is then as good as lost)."""
        self._waiting = True
        stream.heard_at, pinged = time.monotonic(), False  # it sent everything read so far: heard just now
        try:
            while True:
                silent = time.monotonic() - stream.heard_at
                if silent < self.timeout / 2:
                    pinged = False  # heard from since the last ping
                action = silence(silent, self.timeout, pinged)
                if action is Silence.LOST:
                    raise ServiceUnavailable(f"{self.source.system}: no message from the server for {silent:.0f} s "
                                             "(wal_sender_timeout): the replication connection is taken for lost")
                if action is Silence.PING:
                    stream.report(self.confirmed, reply=True)
                    pinged = True
                message = await stream.next(next_check(silent, self.timeout, pinged))
                if message is not None:
                    return message
        finally:
            self._waiting = False

    async def _status(self, stream: ReplicationStream) -> None:
        """Status updates, heartbeats and progress, whatever the reader is doing."""
        conn, publisher = self.conn, self.publisher
        assert conn is not None and publisher is not None
        tick = min(STATUS_TICK, self.interval)
        while True:
            await asyncio.sleep(tick)
            if publisher.failure is not None:
                raise publisher.failure
            self._confirm(stream)
            if self.heartbeat.due():
                await emit_heartbeat(conn)
                self.heartbeat.beat()
            self._note_progress()
            self._save()

    def _confirm(self, stream: ReplicationStream, *, force: bool = False) -> None:
        """Report the acknowledged position when it moved, and at least every status interval."""
        assert self.publisher is not None
        confirmed = self.publisher.acks.confirmed
        if confirmed > self.confirmed or force or time.monotonic() - stream.reported_at >= self.interval:
            self.confirmed = max(self.confirmed, confirmed)
            stream.report(self.confirmed)

    def _note_progress(self) -> None:
        assert self.publisher is not None
        acks, p = self.publisher.acks, self.progress
        pending = acks.pending_since
        if pending is None and self.assembler.commit_ts:  # a transaction is being read
            pending = self.assembler.commit_ts
        events = self._acknowledged_before + self.publisher.acknowledged
        self._note(
            published_lsn=self.confirmed or p.published_lsn,
            published_at=time.time() if events > p.events else p.published_at,
            last_commit_at=acks.confirmed_commit_ts / 1e6 if acks.confirmed_commit_ts else p.last_commit_at,
            pending_since=None if pending is None else pending / 1e6,
            caught_up=self._waiting and pending is None and not acks.unacknowledged,
            events=events,
            transactions=self._transactions,
            skipped_transactions=self._skipped,
        )

    def _note(self, **changes: object) -> None:
        self.progress = self.progress.touched(**changes)

    def _save(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._saved_at < PROGRESS_EVERY:
            return
        self._saved_at = now
        try:
            write_progress(self._progress_file, self.progress.touched())
        except OSError as exc:
            self.log.warning("cannot write capture progress", path=str(self._progress_file), error=str(exc))

    # -------------------------------------------------------------- running until stopped

    async def run(self, stop: asyncio.Event) -> None:
        """Sessions until `stop` is set; lost connections and broker failures are retried with backoff. The
        progress file is written as soon as the first session streams."""
        delay = Backoff()
        while not stop.is_set():
            try:
                if self.conn is None or self.conn.is_closed():
                    self.conn = await open_source(self.settings, self.source.system)
                    self.log.info("reconnected to the source database")
                if self.publisher is None:
                    self.publisher = await start_publisher(self.settings, self.source.system, stop=stop)
                    self.log.info("reconnected to kafka")
                await self.session(stop, on_started=lambda: (delay.reset(), self._save(force=True)))
            except ConfigError:
                raise
            except SlotInUse as exc:
                await self._trouble(stop, delay, "slot in use by another reader, retrying", exc)
            except KafkaError as exc:
                await self._trouble(stop, delay, "kafka publish failed; what followed the last acknowledged "
                                    "position will be read again", exc, kafka=True)
            except CONNECTION_TROUBLE as exc:
                await self._trouble(stop, delay, "source database connection lost, retrying", exc, database=True)
            except PgOutputError as exc:
                raise CdcError(f"{self.source.system}: cannot decode a change of slot {self.source.slot}: {exc}") \
                    from None
            except asyncpg.PostgresError as exc:
                problem = slot_error(self.source.slot, exc)
                if isinstance(problem, ConfigError):
                    raise problem from None
                await self._trouble(stop, delay, "reading the slot failed, retrying", exc, database=True)

    async def _trouble(self, stop: asyncio.Event, delay: Backoff, message: str, exc: BaseException, *,
                       database: bool = False, kafka: bool = False) -> None:
        reason = broker_error(exc) if kafka else (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        pause = delay.next()
        self.log.warning(message, error=reason, retry_in=round(pause, 2))
        if kafka and self.publisher is not None:
            self._acknowledged_before += self.publisher.acknowledged
            await close_producer(self.publisher)
            self.publisher = None
        if database and self.conn is not None:
            with contextlib.suppress(Exception):
                await self.conn.close(timeout=2)
            self.conn = None
        await wait(stop, pause)

    async def close(self) -> None:
        self._note(stopped=True, published_lsn=self.confirmed or self.progress.published_lsn)
        self._save(force=True)
        if self.publisher is not None:
            await close_producer(self.publisher)
            self.publisher = None
        if self.conn is not None:
            with contextlib.suppress(Exception):
                await self.conn.close(timeout=5)
            self.conn = None


async def wait(stop: asyncio.Event, seconds: float) -> None:
    """Sleep `seconds`, waking early when `stop` is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def start_publisher(settings: Settings, system: str, stop: asyncio.Event | None = None) -> Publisher:
    """A publisher on a new idempotent producer. No linger: capture builds its record batches itself and hands
    them over when the stream has nothing more buffered, so waiting for more would only add latency."""
    producer = await start_producer(settings, timeout=STARTUP_TIMEOUT, stop=stop, client_id=f"cdc-capture-{system}",
                                    linger_ms=0)
    return Publisher(producer, max_unacknowledged=settings.capture_batch_changes)


async def close_producer(publisher: Publisher) -> None:
    with contextlib.suppress(Exception):
        await asyncio.wait_for(publisher.producer.stop(), 10)


# ------------------------------------------------------------------ entry points


async def capture_system(settings: Settings, system: System, stop: asyncio.Event, mapping: MappingFile) -> None:
    """Capture one system until `stop` is set. Problems found at start-up raise (ConfigError,
    ServiceUnavailable); once running, lost connections are retried and logged."""
    conn = await open_source(settings, system)
    try:
        source = await prepare_source(conn, settings, system, mapping)
        topics = [settings.topic(system, table) for _, table in source.tables]
        await ensure_topics(settings, topics + [settings.dead_letter_topic], timeout=STARTUP_TIMEOUT)
        publisher = await start_publisher(settings, system)
    except BaseException:
        await conn.close()
        raise
    capture = SystemCapture(settings, source, conn, publisher)
    capture.log.info("capture started", publication=source.publication, tables=source.tables_text,
                     decoder="C" if pgoutput.NATIVE else "pure Python (no C compiler at install: slower)")
    try:
        await capture.run(stop)
    finally:
        await capture.close()
        capture.log.info("capture stopped", events=capture.progress.events,
                         transactions=capture.progress.transactions)


async def run_capture(settings: Settings, systems: list[System] | tuple[System, ...], stop_event: asyncio.Event,
                      *, mapping: MappingFile | None = None) -> None:
    """Capture `systems` concurrently until `stop_event` is set; each finishes its batch in flight, then returns.
    If one system fails, the others are stopped the same way and the failure is raised."""
    if mapping is None:
        from cdc.mapping.load import load_mapping_file

        mapping = load_mapping_file(settings.mapping_file)
    stop = asyncio.Event()

    async def relay() -> None:
        await stop_event.wait()
        stop.set()

    relay_task = asyncio.create_task(relay())
    tasks = [asyncio.create_task(capture_system(settings, s, stop, mapping), name=f"capture-{s}")
             for s in systems]
    try:
        if not tasks:
            return
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        failed = [t for t in done if not t.cancelled() and t.exception() is not None]
        if failed:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise failed[0].exception()  # type: ignore[misc]
    finally:
        relay_task.cancel()
        for task in tasks:
            task.cancel()
        await asyncio.gather(relay_task, *tasks, return_exceptions=True)
