"""The capture loop of one system, and `run_capture` for all of them.

One cycle: peek a bounded batch of whole transactions from the slot → publish their events → wait until Kafka has
acknowledged every one → advance the slot to the end of the last transaction read (after a full batch, at most
once a second otherwise, and on stop). A crash anywhere before an advance means what followed the previous one is
read and published again (at least once; event ids make the duplicates recognisable).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

import asyncpg
from aiokafka.errors import KafkaError

from cdc import log
from cdc.backoff import Backoff
from cdc.capture.events import EventEncoder
from cdc.capture.heartbeat import HeartbeatClock, emit_heartbeat
from cdc.capture.pgoutput import Decoder, PgOutputError
from cdc.capture.preflight import check_source
from cdc.capture.progress import Progress, progress_path, write_progress
from cdc.capture.publisher import Publisher
from cdc.capture.slot import (
    advance_slot,
    ensure_publication,
    ensure_slot,
    publication_name,
    read_slot,
    slot_error,
    slot_name,
)
from cdc.capture.stream import peek
from cdc.capture.tables import captured_tables
from cdc.capture.transactions import Assembler, Boundary, Publish, TableName, Truncated
from cdc.database import CONNECTION_LOST, connect
from cdc.errors import CdcError, ConfigError, ServiceUnavailable
from cdc.mapping.model import MappingFile
from cdc.settings import Settings, System
from cdc.topics.admin import ensure_topics
from cdc.topics.producer import STARTUP_TIMEOUT, broker_error, start_producer

SESSION = {"DateStyle": "ISO, YMD", "TimeZone": "UTC", "IntervalStyle": "postgres", "extra_float_digits": "1"}
PROGRESS_EVERY = 1.0  # seconds between progress-file writes
BATCH_GROWTH = 64  # a backlog is read in batches of up to this many times capture_batch_changes
ADVANCE_EVERY = 1.0  # seconds: the slot is advanced at most this often while changes trickle in
IDLE_WAIT_MAX = 0.5  # seconds: the longest pause after an empty peek (what the first change after idleness may wait)
IDLE_AFTER = 5  # empty peeks in a row after which the source counts as idle
CONNECTION_TROUBLE = (*CONNECTION_LOST, ServiceUnavailable)


async def open_source(settings: Settings, system: System) -> asyncpg.Connection:
    conn = await connect(settings.dsn(system), role=system,
                         server_settings={**SESSION, "application_name": f"cdc-capture-{system}"})
    # Every peek makes the server log "starting logical decoding for slot …" and "… found consistent point"
    # with its statement: megabytes a day of routine lines. Kept out of the server log where the role may
    # (superuser, or `GRANT SET ON PARAMETER log_min_messages`); capture logs its own errors anyway.
    with contextlib.suppress(asyncpg.InsufficientPrivilegeError):
        await conn.execute("SET log_min_messages = fatal")
    return conn


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
    logger = log.get(system=system)
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
    """The running capture of one system: its connection, producer, assembler and progress."""

    def __init__(self, settings: Settings, source: Source, conn: asyncpg.Connection, publisher: Publisher) -> None:
        self.settings = settings
        self.source = source
        self.conn: asyncpg.Connection | None = conn
        self.publisher: Publisher | None = publisher
        self.log = log.get(system=source.system, slot=source.slot)
        self.assembler = Assembler(
            encoder=EventEncoder(source.system, f"{settings.topic_prefix}.{source.system}", source.database),
            topic=lambda table: settings.topic(source.system, table),
            keys=source.keys,
            origin_prefix=settings.replication_origin_prefix,
            decoder=Decoder(),
        )
        self.heartbeat = HeartbeatClock(settings.heartbeat_interval)
        self.limit = settings.capture_batch_changes
        self.max_limit = settings.capture_batch_changes * BATCH_GROWTH
        self.progress = Progress(system=source.system, slot=source.slot)
        self._progress_file = progress_path(settings, source.slot)
        self._saved_at = 0.0
        self.published_upto = 0  # everything ending before this LSN is acknowledged by Kafka
        self.advanced_to = 0  # where this capture last advanced the slot
        self._advanced_at = time.monotonic()
        self._unadvanced_rows = 0  # rows a peek reads again until the slot is advanced

    # -------------------------------------------------------------- one cycle

    async def cycle(self) -> int:
        """Read and publish one batch, advancing the slot when due; the number of new rows read (0: nothing).

        The slot is advanced after a full batch, or once ADVANCE_EVERY seconds have passed, not after every
        batch: an advance decodes the WAL from the slot's restart point again (as a peek does), which would
        double the cost of each cycle. Until then peeks read the published transactions again and pass over them.
        """
        conn, publisher = self.conn, self.publisher
        assert conn is not None and publisher is not None
        if self.heartbeat.due():
            await emit_heartbeat(conn)
            self.heartbeat.beat()
        assembler = self.assembler
        assembler.reset()
        assembler.published_upto = self.published_upto
        limit = self.limit
        rows = again = events = transactions = skipped = 0
        advance_to: int | None = None
        first_commit: float | None = None
        last_commit: float | None = None
        feed, publish = assembler.feed, publisher.publish
        peek_limit = limit + self._unadvanced_rows
        async with contextlib.aclosing(peek(conn, self.source.slot, self.source.publication, peek_limit)) as stream:
            async for chunk in stream:
                for lsn, data in chunk:
                    rows += 1
                    out = feed(lsn, data)
                    if out is None:
                        continue
                    if type(out) is Publish:
                        await publish(out.topic, out.key, out.value)
                        events += 1
                        if first_commit is None:
                            first_commit = assembler.commit_ts / 1e6
                            self._note(pending_since=first_commit)
                    elif type(out) is Boundary:
                        advance_to = out.lsn
                        if out.published_before:
                            again = rows
                        elif out.commit_ts is not None:
                            last_commit = out.commit_ts / 1e6
                            first_commit = first_commit or last_commit
                            transactions += 1
                            skipped += out.origin is not None
                    elif type(out) is Truncated:
                        for schema, table in out.tables:
                            self.log.warning("truncate not published: consumers see no deletes for the emptied "
                                             "rows", table=f"{schema}.{table}", lsn=out.lsn)
                self._save()
        await publisher.flush()
        if advance_to is not None:
            self.published_upto = max(self.published_upto, advance_to)
        self._unadvanced_rows = rows
        if rows >= self.settings.capture_batch_changes or time.monotonic() - self._advanced_at >= ADVANCE_EVERY:
            await self.advance()
        fresh = rows - again
        caught_up = rows < peek_limit
        # Behind: read bigger batches. Every peek decodes again from the slot's restart point, which trails
        # the confirmed position until PostgreSQL logs its next running-transactions record (every 15 s), so
        # many small batches over a backlog would decode it again and again.
        self.limit = self.settings.capture_batch_changes if caught_up else min(limit * 4, self.max_limit)
        p = self.progress
        self._note(
            published_lsn=self.published_upto or p.published_lsn,
            published_at=time.time() if events else p.published_at,
            last_commit_at=last_commit if events else p.last_commit_at,
            pending_since=None if caught_up else last_commit,
            caught_up=caught_up,
            events=p.events + events,
            transactions=p.transactions + transactions,
            skipped_transactions=p.skipped_transactions + skipped,
        )
        if events:
            self.log.debug("published", events=events, transactions=transactions, upto=self.published_upto)
        self._save()
        return fresh

    async def advance(self) -> None:
        """Move the slot to the end of everything acknowledged so far."""
        if self.published_upto > self.advanced_to:
            assert self.conn is not None
            await advance_slot(self.conn, self.source.slot, self.published_upto)
            self.advanced_to = self.published_upto
        self._advanced_at = time.monotonic()
        self._unadvanced_rows = 0

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
        self._save(force=True)  # the progress file appears once capture is reading
        delay = Backoff()
        empty = 0  # peeks in a row that found nothing new
        while not stop.is_set():
            try:
                if self.conn is None or self.conn.is_closed():
                    self.conn = await open_source(self.settings, self.source.system)
                    _, created = await ensure_slot(self.conn, self.source.slot)
                    if created:
                        self.log.warning("replication slot was missing and is created again: changes committed "
                                         "since it disappeared are not captured")
                    self.log.info("reconnected to the source database")
                if self.publisher is None:
                    producer = await start_producer(self.settings, timeout=STARTUP_TIMEOUT, stop=stop,
                                                    client_id=f"cdc-capture-{self.source.system}")
                    self.publisher = Publisher(producer)
                    self.log.info("reconnected to kafka")
                began = time.monotonic()
                rows = await self.cycle()
                took = time.monotonic() - began
                delay.reset()
            except CdcError as exc:
                if isinstance(exc, ServiceUnavailable):
                    await self._trouble(stop, delay, "unavailable, retrying", exc, database=True)
                    continue
                raise
            except KafkaError as exc:
                await self._trouble(stop, delay, "kafka publish failed; the batch will be read again", exc,
                                    kafka=True)
                continue
            except asyncpg.ObjectInUseError as exc:
                await self._trouble(stop, delay, "slot in use by another reader, retrying", exc)
                continue
            except CONNECTION_TROUBLE as exc:
                await self._trouble(stop, delay, "source database connection lost, retrying", exc, database=True)
                continue
            except PgOutputError as exc:
                raise CdcError(f"{self.source.system}: cannot decode a change of slot {self.source.slot}: {exc}") \
                    from None
            except asyncpg.PostgresError as exc:
                problem = slot_error(self.source.slot, exc)
                if isinstance(problem, ConfigError):
                    raise problem from None
                await self._trouble(stop, delay, "reading the slot failed, retrying", exc, database=True)
                continue
            empty = empty + 1 if rows == 0 else 0
            if rows == 0:
                await wait(stop, idle_wait(took, self.settings.capture_poll_interval,
                                           self.settings.capture_idle_share, empty))
            else:
                await asyncio.sleep(0)

    async def _trouble(self, stop: asyncio.Event, delay: Backoff, message: str, exc: BaseException, *,
                       database: bool = False, kafka: bool = False) -> None:
        reason = broker_error(exc) if kafka else (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        pause = delay.next()
        self.log.warning(message, error=reason, retry_in=round(pause, 2))
        if self.publisher is not None:
            self.publisher.discard()
        if kafka and self.publisher is not None:
            await close_producer(self.publisher)
            self.publisher = None
        if database and self.conn is not None:
            with contextlib.suppress(Exception):
                await self.conn.close(timeout=2)
            self.conn = None
        await wait(stop, pause)

    async def close(self) -> None:
        if self.conn is not None and not self.conn.is_closed():
            try:
                await self.advance()
            except (*CONNECTION_TROUBLE, asyncpg.PostgresError) as exc:
                self.log.warning("could not advance the slot on the way out; the last second of events will be "
                                 "published again", error=str(exc))
        self._note(stopped=True)
        self._save(force=True)
        if self.publisher is not None:
            await close_producer(self.publisher)
            self.publisher = None
        if self.conn is not None:
            with contextlib.suppress(Exception):
                await self.conn.close(timeout=5)
            self.conn = None


def idle_wait(peek_seconds: float, poll_interval: float, share: float, empty: int) -> float:
    """The pause after the `empty`-th peek in a row that found nothing new.

    The poll interval while changes flow (a quiet moment between transactions is not idleness); once the source
    is idle (IDLE_AFTER empty peeks in a row), longer when peeking costs so much that polling would use more than
    `share` of a core. An empty peek still decodes everything the cluster wrote since the slot's restart point (up
    to 15 s of WAL, all databases), e.g. while a worker writes the other system."""
    if empty < IDLE_AFTER:
        return poll_interval
    return max(poll_interval, min(IDLE_WAIT_MAX, peek_seconds * (1 - share) / share))


async def wait(stop: asyncio.Event, seconds: float) -> None:
    """Sleep `seconds`, waking early when `stop` is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


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
        producer = await start_producer(settings, timeout=STARTUP_TIMEOUT, client_id=f"cdc-capture-{system}")
    except BaseException:
        await conn.close()
        raise
    capture = SystemCapture(settings, source, conn, Publisher(producer))
    capture.log.info("capture started", publication=source.publication, tables=source.tables_text)
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
