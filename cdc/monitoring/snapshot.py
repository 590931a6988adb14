"""Collecting one snapshot: topics and consumer lag from Kafka and the state database's tracked offsets, capture
lag of each system, jobs, open errors and mappings — each part bounded by a timeout, so a service that hangs
shows up as a problem in the snapshot instead of stalling the dashboard.

The collector keeps its connections (a small pool per database, one Kafka consumer and admin client) between
samples, and the previous sample's offsets to turn offset deltas into messages per second.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import asyncpg

from cdc.capture.lag import read_lag
from cdc.capture.progress import progress_path, read_progress
from cdc.capture.slot import slot_name
from cdc.database import describe
from cdc.errors import CdcError
from cdc.mapping.filters import describe as describe_filter
from cdc.mapping.load import load_mapping_file
from cdc.mapping.model import MappingFile
from cdc.mapping.order import dependencies, dependency_order
from cdc.monitoring import offsets
from cdc.monitoring.kafka import KafkaOffsets, KafkaReading
from cdc.monitoring.model import (
    SERVICES,
    CaptureStats,
    ErrorRow,
    JobCounter,
    JobRow,
    MappingRow,
    PartitionStats,
    ServiceCheck,
    Snapshot,
    TopicStats,
)
from cdc.monitoring.security import Redactor, reason
from cdc.pair import SYSTEMS
from cdc.settings import Settings
from cdc.state import job_errors, jobs, mapping_settings
from cdc.state import offsets as tracked_offsets
from cdc.topics.names import table_topics

T = TypeVar("T")

COUPLING_COUNTS = """
SELECT mapping, count(*) AS couplings, count(*) FILTER (WHERE skipped) AS skipped
FROM cdc.couplings GROUP BY mapping
"""
JOB_COUNTERS = "SELECT mapping, kind, " + ", ".join(
    f"sum({name})::bigint AS {name}" for name in jobs.COUNTERS) + " FROM cdc.jobs GROUP BY mapping, kind"


class SectionFailed(Exception):
    """One part of the snapshot could not be read; the message is redacted and safe to show."""


@dataclass
class _Previous:
    at: float
    end: dict[offsets.TopicPartition, int]
    committed: dict[offsets.TopicPartition, int]


class Collector:
    def __init__(self, settings: Settings, *, timeout: float = 4.0, jobs_limit: int = 50,
                 errors_limit: int = 200, slow_every: float = 10.0, capture_probe: bool = False) -> None:
        """`capture_probe`: when capture is stopped, peek at its slot for the age of the oldest pending change
        (as `cdc capture status` does). Off for the sampling loop: a peek holds the slot for up to five
        seconds, and a capture starting meanwhile would find it busy."""
        self.settings = settings
        self.capture_probe = capture_probe
        self.timeout = timeout
        self.jobs_limit = jobs_limit
        self.errors_limit = errors_limit
        self.slow_every = slow_every
        self.redact = Redactor.of(settings)
        self.kafka = KafkaOffsets(settings, timeout=timeout)
        self._pools: dict[str, asyncpg.Pool] = {}
        self._pool_lock = asyncio.Lock()
        self.closed = False
        self._previous: _Previous | None = None
        self._track_lock = asyncio.Lock()
        self._mapping_file: MappingFile | None = None
        self._mapping_problem: str | None = None
        self._slow: tuple[float, list[MappingRow], list[JobCounter]] | None = None

    # ------------------------------------------------------------ resources

    @property
    def mapping_file(self) -> MappingFile | None:
        if self._mapping_file is None and self._mapping_problem is None:
            try:
                self._mapping_file = load_mapping_file(self.settings.mapping_file)
            except CdcError as exc:
                self._mapping_problem = self.redact(f"mapping file: {reason(exc)}")
        return self._mapping_file

    async def pool(self, role: str) -> asyncpg.Pool:
        """A small pool to the `role` database (erp, crm, state); connections are made on demand."""
        async with self._pool_lock:
            if self.closed:
                raise SectionFailed(f"{role} database: monitoring is shutting down")
            found = self._pools.get(role)
            if found is None:
                found = await asyncpg.create_pool(self.settings.dsn(role), min_size=0, max_size=3,  # type: ignore[arg-type]
                                                  timeout=self.timeout, command_timeout=self.timeout,
                                                  max_inactive_connection_lifetime=60)
                self._pools[role] = found
            return found

    async def run(self, role: str, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """`work` on a connection to `role`'s database, within the timeout; SectionFailed (redacted) on failure."""
        try:
            pool = await self.pool(role)
            async with asyncio.timeout(self.timeout * 2):
                async with pool.acquire(timeout=self.timeout) as conn:
                    return await work(conn)
        except SectionFailed:
            raise
        except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError):
            raise SectionFailed(f"{role} database: the cdc schema is missing: run `cdc db migrate`") from None
        except (Exception, TimeoutError) as exc:  # noqa: BLE001 - reported as a problem of this section
            text = "no answer in time" if isinstance(exc, TimeoutError) else reason(exc)
            raise SectionFailed(self.redact(f"{role} database at {describe(self.settings.dsn(role))}: "  # type: ignore[arg-type]
                                            f"{text}")) from None

    async def close(self) -> None:
        self.closed = True
        await self.kafka.close()
        pools, self._pools = self._pools, {}
        for pool in pools.values():
            try:
                await asyncio.wait_for(pool.close(), self.timeout)
            except (Exception, TimeoutError):  # noqa: BLE001
                pool.terminate()

    async def __aenter__(self) -> Collector:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------ topics

    def topic_names(self) -> list[tuple[str, str | None, str | None]]:
        """(topic, system, table) of every mapped table's topic, then the dead-letter topic."""
        found: list[tuple[str, str | None, str | None]] = []
        mapping_file = self.mapping_file
        if mapping_file is not None:
            found.extend((t.topic, t.system, t.table) for t in table_topics(self.settings, mapping_file))
        found.append((self.settings.dead_letter_topic, None, None))
        return found

    async def _tracked(self, topics: list[str]) -> dict[offsets.TopicPartition, int]:
        return await self.run("state", lambda conn: tracked_offsets.load(conn, self.settings.consumer_group, topics))

    def _topics(self, reading: KafkaReading, tracked: dict[offsets.TopicPartition, int],
                previous: _Previous | None, now: float) -> list[TopicStats]:
        seconds = now - previous.at if previous is not None else 0.0
        result: list[TopicStats] = []
        for name, system, table in self.topic_names():
            dead_letter = system is None
            partitions: list[PartitionStats] = []
            for p in reading.partitions(name):
                tp = (name, p)
                beginning, end = reading.beginning.get(tp, 0), reading.end[tp]
                committed = None if dead_letter else offsets.committed_offset(tracked.get(tp),
                                                                             reading.committed.get(tp))
                partitions.append(PartitionStats(
                    partition=p, beginning=beginning, end=end, retained=offsets.retained(beginning, end),
                    committed=committed.offset if committed else None,
                    committed_source=committed.source if committed else None,
                    lag=None if dead_letter else offsets.partition_lag(beginning, end,
                                                                       committed.offset if committed else None),
                    rate=offsets.rate(previous.end.get(tp), end, seconds) if previous else None,
                    consumed_rate=(offsets.rate(previous.committed.get(tp), committed.offset, seconds)
                                   if previous and committed else None)))
            result.append(TopicStats(name=name, system=system, table=table, dead_letter=dead_letter,
                                     exists=name in reading.existing, partitions=partitions))
        return result

    # ------------------------------------------------------------ capture

    async def _capture(self, system: str) -> CaptureStats:
        slot = slot_name(self.settings, system)
        try:
            lag = await self.run(system, lambda conn: read_lag(conn, self.settings, system, probe=self.capture_probe))
        except SectionFailed as exc:
            return CaptureStats(system=system, slot=slot, error=str(exc),
                                heartbeat_interval=self.settings.heartbeat_interval)
        progress = read_progress(progress_path(self.settings, lag.slot))
        return CaptureStats(
            system=system, slot=lag.slot, slot_exists=lag.slot_exists, slot_active=lag.slot_active,
            capture_running=lag.capture_running, lag_bytes=lag.lag_bytes, lag_seconds=lag.oldest_unpublished_age,
            age_source=lag.age_source, last_event_at=_at(progress.last_commit_at if progress else None),
            last_published_at=_at(lag.last_published_at), heartbeat_at=_at(progress.updated_at if progress else None),
            heartbeat_interval=self.settings.heartbeat_interval, events_published=lag.events_published)

    # ------------------------------------------------------------ state database

    async def _jobs(self, conn: asyncpg.Connection) -> list[JobRow]:
        return [job_row(j) for j in await jobs.list_jobs(conn, limit=self.jobs_limit)]

    async def _errors(self, conn: asyncpg.Connection) -> tuple[list[ErrorRow], dict[str, int]]:
        found = await job_errors.list_errors(conn, open_only=True, limit=self.errors_limit)
        return [error_row(e) for e in found], await job_errors.counts(conn)  # type: ignore[return-value]

    async def _mappings(self, conn: asyncpg.Connection) -> list[MappingRow]:
        mapping_file = self.mapping_file
        if mapping_file is None:
            return []
        flags = await mapping_settings.effective_sync_only_coupled(conn, mapping_file)
        states = await mapping_settings.fetch_all(conn)
        counts = {row["mapping"]: (row["couplings"], row["skipped"]) for row in await conn.fetch(COUPLING_COUNTS)}
        rows: list[MappingRow] = []
        for n, m in enumerate(dependency_order(mapping_file), start=1):
            state = states.get(m.name)
            couplings, skipped = counts.get(m.name, (0, 0))
            rows.append(MappingRow(
                order=n, name=m.name, direction=m.direction, erp_table=_table(m.erp.schema_, m.erp.table),
                crm_table=_table(m.crm.schema_, m.crm.table), erp_filter=describe_filter(m.erp.filter),
                crm_filter=describe_filter(m.crm.filter), sync_only_coupled=flags[m.name],
                sync_only_coupled_overridden=state is not None and state.sync_only_coupled is not None,
                conflict=m.conflict, deletion=m.deletion, depends_on=dependencies(m),
                last_synced_at=state.last_synced_at if state else None, couplings=couplings, skipped=skipped))
        return rows

    async def _job_counters(self, conn: asyncpg.Connection) -> list[JobCounter]:
        return [JobCounter(mapping=row["mapping"], kind=row["kind"], counter=name, value=row[name] or 0)
                for row in await conn.fetch(JOB_COUNTERS) for name in jobs.COUNTERS]

    async def _slow_parts(self, conn: asyncpg.Connection) -> tuple[list[MappingRow], list[JobCounter]]:
        """Mappings (coupling counts scan the couplings) and job counters, refreshed every `slow_every` s."""
        now = time.monotonic()
        if self._slow is None or now - self._slow[0] >= self.slow_every:
            self._slow = (now, await self._mappings(conn), await self._job_counters(conn))
        return self._slow[1], self._slow[2]

    def forget_slow_parts(self) -> None:
        """Read mappings and counters afresh next time (after an action changed them)."""
        self._slow = None

    async def _ping(self, role: str) -> ServiceCheck:
        started = time.monotonic()
        try:
            await self.run(role, lambda conn: conn.fetchval("SELECT 1"))
            return ServiceCheck(ok=True, seconds=round(time.monotonic() - started, 4))
        except SectionFailed as exc:
            return ServiceCheck(ok=False, error=str(exc), seconds=round(time.monotonic() - started, 4))

    # ------------------------------------------------------------ the snapshot

    async def collect(self, *, full: bool = True, track: bool = True) -> Snapshot:
        """One snapshot. `full=False` reads only what readiness needs (services and lag); `track=False` leaves
        the previous offsets (for rates) alone."""
        started = time.monotonic()
        problems: list[str] = []
        if self.mapping_file is None and self._mapping_problem:
            problems.append(self._mapping_problem)
        names = [name for name, _, _ in self.topic_names()]

        kafka_task = asyncio.create_task(self._kafka(names))
        tracked_task = asyncio.create_task(_attempt(self._tracked([n for n, s, _ in self.topic_names() if s])))
        pings = {role: asyncio.create_task(self._ping(role)) for role in ("erp", "crm", "state")}
        capture_tasks = [asyncio.create_task(self._capture(s)) for s in SYSTEMS] if full else []
        state_task = asyncio.create_task(_attempt(self.run("state", self._state_parts))) if full else None

        reading, kafka_check = await kafka_task
        tracked, tracked_problem = await tracked_task
        services = {"kafka": kafka_check, **{role: await task for role, task in pings.items()}}
        for role in SERVICES:
            check = services[role]
            if not check.ok and check.error:
                problems.append(check.error)
        if tracked_problem and services["state"].ok:
            problems.append(f"tracked offsets: {tracked_problem}")

        now = time.time()
        async with self._track_lock:
            previous = self._previous
            topics = self._topics(reading, tracked or {}, previous, now) if reading is not None else []
            if track and reading is not None:
                committed = {(t.name, p.partition): p.committed for t in topics for p in t.partitions
                             if p.committed is not None}
                self._previous = _Previous(now, dict(reading.end), committed)
        missing = [t.name for t in topics if not t.exists]
        if reading is not None and missing:
            problems.append(f"{len(missing)} topic(s) not created yet: {', '.join(missing[:3])}"
                            + (" ..." if len(missing) > 3 else ""))

        capture = [await task for task in capture_tasks]
        problems += [c.error for c in capture if c.error and services.get(c.system, ServiceCheck(ok=True)).ok]
        state: dict[str, Any] = {}
        if state_task is not None:
            state, state_problem = await state_task
            state = state or {}
            if state_problem and services["state"].ok:
                problems.append(state_problem)
        return Snapshot(
            taken_at=datetime.fromtimestamp(now, UTC), seconds=round(time.monotonic() - started, 4),
            consumer_group=self.settings.consumer_group, topics=topics, capture=capture,
            jobs=state.get("jobs", []), errors=state.get("errors", []), errors_open=state.get("errors_open"),
            errors_parked=state.get("errors_parked"),
            mappings=state.get("mappings", []), job_counters=state.get("job_counters", []), services=services,
            problems=[self.redact(p) for p in dict.fromkeys(problems)])

    async def _kafka(self, topics: list[str]) -> tuple[KafkaReading | None, ServiceCheck]:
        started = time.monotonic()
        try:
            reading = await self.kafka.read(topics, self.settings.consumer_group)
        except Exception as exc:  # noqa: BLE001 - KafkaUnavailable or anything unforeseen: Kafka is down for us
            return None, ServiceCheck(ok=False, error=self.redact(reason(exc)),
                                      seconds=round(time.monotonic() - started, 4))
        return reading, ServiceCheck(ok=True, seconds=round(time.monotonic() - started, 4))

    async def _state_parts(self, conn: asyncpg.Connection) -> dict[str, Any]:
        errors, counts = await self._errors(conn)
        mappings, counters = await self._slow_parts(conn)
        return {"jobs": await self._jobs(conn), "errors": errors, "errors_open": counts["open"],
                "errors_parked": counts["parked"],
                "mappings": mappings, "job_counters": counters}


async def _attempt(work: Awaitable[T]) -> tuple[T | None, str | None]:
    try:
        return await work, None
    except SectionFailed as exc:
        return None, str(exc)


def _at(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def _table(schema: str, table: str) -> str:
    return table if schema == "public" else f"{schema}.{table}"


def job_row(job: jobs.Job, now: datetime | None = None) -> JobRow:
    end = job.finished_at or (now or datetime.now(UTC))
    return JobRow(id=job.id, mapping=job.mapping, kind=job.kind, direction=job.direction, status=job.status,
                  started_at=job.started_at, finished_at=job.finished_at,
                  duration_seconds=max(0.0, (end - job.started_at).total_seconds()),
                  counts=job.counts.as_dict(), message=job.message)


def error_row(error: job_errors.JobError) -> ErrorRow:
    return ErrorRow(id=error.id, job_id=error.job_id, mapping=error.mapping, source_system=error.source_system,
                    source_key=error.source_key, destination_system=error.destination_system,
                    destination_key=error.destination_key, message=error.message, detail=error.detail,
                    state=error.state, occurrences=error.occurrences, has_event=error.event is not None,
                    created_at=error.created_at, updated_at=error.updated_at, kind=error.kind,
                    next_attempt_at=error.next_attempt_at, waiting=error.waiting)
