"""One replay run: for each mapping in dependency order, replay its sides one after the other and wait until the
worker has processed each before going on — the engine of full sync, sync modified and sync one mapping.

Per mapping: a job per direction the mapping carries (same run id), ERP side replayed then waited for, then the
CRM side, then the jobs finish and the watermarks move (never past the job's start). A stop request (Ctrl-C)
ends the run cleanly: the current mapping's jobs are marked cancelled and nothing later runs. A failure marks them
failed. The persistent "only coupled" settings are never touched here: replays carry `create` themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from cdc import catalog, database, table_gateway
from cdc.database import describe
from cdc.errors import CdcError
from cdc.mapping.model import MappingFile, TableMapping
from cdc.orchestrator import runs, watermarks
from cdc.orchestrator.plan import Step, select, steps_of
from cdc.orchestrator.progress import Reporter
from cdc.orchestrator.replay import Publisher, ReplayTarget, wait_processed
from cdc.orchestrator.sources import CHUNK, SideRows
from cdc.orchestrator.workers import WorkerFactory, WorkerHost
from cdc.pair import SYSTEMS, System
from cdc.settings import Settings
from cdc.state import jobs, mapping_settings, migrate
from cdc.state.jobs import Job, Kind
from cdc.topics import key_formats

STALL_TIMEOUT = 300.0
PROGRESS_EVERY = 0.5


@dataclass(frozen=True)
class RunOptions:
    run_kind: runs.RunKind
    job_kind: Kind
    full: bool
    """Replay every in-filter row (with creation allowed); otherwise rows modified since the watermarks."""
    only: str | None = None
    stall_timeout: float = STALL_TIMEOUT
    chunk: int = CHUNK


@dataclass
class RunResult:
    run_id: UUID
    kind: str
    status: str
    jobs: list[Job]
    mappings: list[str]
    completed: list[str] = field(default_factory=list)
    remaining: list[str] = field(default_factory=list)
    worker: str = ""
    only_coupled_before: dict[str, bool] = field(default_factory=dict)
    error: str | None = None

    @property
    def cancelled(self) -> bool:
        return self.status == "cancelled"

    def resume_commands(self, full: bool) -> list[str]:
        return [f"cdc sync --mapping {name}" + (" --full" if full else "") for name in self.remaining]


class Connections:
    """The orchestrator's connections: the state database and one reader per system, with their catalogs."""

    def __init__(self) -> None:
        self.state: asyncpg.Connection | None = None
        self.readers: dict[System, asyncpg.Connection] = {}
        self.tables: dict[System, dict[str, catalog.Table]] = {}

    def side(self, mapping: TableMapping, system: System) -> SideRows:
        table = self.tables[system].get(mapping.side(system).table)
        if table is None:
            raise CdcError(f"{system} table {mapping.side(system).table} does not exist "
                           f"({describe_table(mapping, system)})")
        return SideRows(mapping, system, table)


def describe_table(mapping: TableMapping, system: System) -> str:
    return f"mapping {mapping.name}, {system} side"


@contextlib.asynccontextmanager
async def connections(settings: Settings, mapping_file: MappingFile, *, migrate_state: bool = True
                      ) -> AsyncIterator[Connections]:
    conns = Connections()
    try:
        conns.state = await database.connect(settings.dsn("state"), role="state")
        if migrate_state:
            await migrate.migrate(conns.state)
        else:
            await migrate.require_current(conns.state)
        for system in SYSTEMS:
            conns.readers[system] = await database.connect(settings.dsn(system), role=system.upper())
            conns.tables[system] = await catalog.read_mapped_tables(conns.readers[system], mapping_file, system)
        yield conns
    finally:
        for conn in [conns.state, *conns.readers.values()]:
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()


async def start_producer(settings: Settings) -> Any:
    from cdc.topics.producer import start_producer as start

    return await start(settings, linger_ms=20, max_batch_size=1024 * 1024, client_id="cdc-orchestrator")


async def run(settings: Settings, mapping_file: MappingFile, options: RunOptions, *, stop: asyncio.Event,
              reporter: Reporter, worker: WorkerFactory | None) -> RunResult:
    """Run the replays of `options`; the outcome with the run's jobs (never raises for a stop request). `worker`
    makes the in-process worker started when the consumer group has none (None: wait for the group's)."""
    from cdc.topics.admin import ensure_topics

    chosen = select(mapping_file, options.only)
    async with connections(settings, mapping_file) as conns:
        state = conns.state
        assert state is not None
        await ensure_topics(settings, mapping=mapping_file)
        only_coupled = await mapping_settings.effective_sync_only_coupled(state, mapping_file)
        run_row = await runs.start(state, options.run_kind, {
            "mappings": [m.name for m in chosen], "sync_only_coupled": only_coupled,
            "full": options.full})
        result = RunResult(run_row.id, options.run_kind, "running", [], [m.name for m in chosen],
                           only_coupled_before=only_coupled)
        producer = await start_producer(settings)
        open_jobs: list[Job] = []
        try:
            async with WorkerHost(settings, mapping_file, worker) as host:
                result.worker = ("in-process" if host.started
                                 else f"consumer group {settings.consumer_group} ({host.members} member(s))")
                if host.started:
                    reporter.note(f"no worker in consumer group {settings.consumer_group}: "
                                  "started one in this process for this command")
                publisher = Publisher(producer)
                for position, mapping in enumerate(chosen):
                    if stop.is_set():
                        result.remaining = [m.name for m in chosen[position:]]
                        result.status = "cancelled"
                        break
                    create = options.full or not only_coupled.get(mapping.name, True)
                    steps = steps_of(mapping)
                    latest: dict[System, datetime | None] = {}
                    outcome = "done"
                    open_jobs = []
                    for step in steps:
                        # each side's job opens when its replay starts: rows the previous side's step wrote
                        # are older than it, so the watermark can move past them
                        job = await jobs.start_job(state, mapping.name, options.job_kind, step.direction,
                                                   run_row.id)
                        open_jobs.append(job)
                        outcome, latest[step.source] = await _step(
                            settings, conns, publisher, host, step, job, create, options, stop, reporter)
                        if outcome != "done":
                            break
                    if outcome == "cancelled":
                        await _finish(state, open_jobs, "cancelled", "cancelled: "
                                      + _resume_hint(mapping.name, options.full))
                        result.remaining = [m.name for m in chosen[position:]]
                        result.status = "cancelled"
                        break
                    for step, job in zip(steps, open_jobs, strict=True):
                        await watermarks.advance(state, mapping.name, step.source, latest.get(step.source),
                                                 job.started_at)
                    if open_jobs:
                        await mapping_settings.mark_synced(state, mapping.name,
                                                           min(j.started_at for j in open_jobs))
                    await _finish(state, open_jobs, "succeeded", None)
                    open_jobs = []
                    result.completed.append(mapping.name)
                else:
                    result.status = "succeeded"
        except BaseException as exc:
            aborted = isinstance(exc, asyncio.CancelledError | KeyboardInterrupt)
            message = "aborted" if aborted else (str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            with contextlib.suppress(Exception):
                await _finish(state, open_jobs, "cancelled" if aborted else "failed", message)
            with contextlib.suppress(Exception):
                await runs.finish(state, run_row.id, "cancelled" if aborted else "failed")
            raise
        finally:
            with contextlib.suppress(Exception):
                await producer.stop()
        await runs.finish(state, run_row.id, result.status)  # type: ignore[arg-type]
        result.jobs = await run_jobs(state, run_row.id)
        return result


def _waves(rows: list[dict[str, Any]]) -> list[tuple[Any, list[dict[str, Any]]]]:
    """Consecutive runs of rows of one hierarchy depth (rows come ordered by depth), without the depth column."""
    waves: list[tuple[Any, list[dict[str, Any]]]] = []
    for row in rows:
        depth = row.pop(table_gateway.DEPTH)
        if not waves or waves[-1][0] != depth:
            waves.append((depth, []))
        waves[-1][1].append(row)
    return waves


def _resume_hint(mapping: str, full: bool) -> str:
    return f"resume with cdc sync --mapping {mapping}" + (" --full" if full else "")


async def _finish(state: asyncpg.Connection, open_jobs: list[Job], status: jobs.Status, message: str | None
                  ) -> None:
    for job in open_jobs:
        text = message
        if status == "succeeded":
            current = await jobs.get_job(state, job.id)
            failed = current.counts.failed if current is not None else 0
            text = f"{failed:,} record(s) failed: cdc errors --mapping {job.mapping}" if failed else "completed"
        await jobs.finish_job(state, job.id, status, text)


async def run_jobs(state: asyncpg.Connection, run_id: UUID) -> list[Job]:
    rows = await state.fetch("SELECT id FROM cdc.jobs WHERE run_id = $1 ORDER BY started_at, id", run_id)
    found = [await jobs.get_job(state, row["id"]) for row in rows]
    return [job for job in found if job is not None]


def decided(counts: jobs.Counts) -> int:
    """How many records a job's counters account for: a record coupled by match also counts as modified or
    unchanged, so `coupled` is not added again."""
    return sum(counts.as_dict().values()) - counts.coupled


async def _applied(state: asyncpg.Connection, job_id: UUID) -> int:
    job = await jobs.get_job(state, job_id)
    return 0 if job is None else decided(job.counts)


async def _step(settings: Settings, conns: Connections, publisher: Publisher, host: WorkerHost, step: Step,
                job: Job, create: bool, options: RunOptions, stop: asyncio.Event, reporter: Reporter
                ) -> tuple[str, datetime | None]:
    """Replay one side and wait for it; ("done" | "cancelled", the latest modified-on replayed)."""
    state = conns.state
    assert state is not None
    rows_of = conns.side(step.mapping, step.source)
    watermark = await watermarks.current(state, step.mapping.name, step.source)
    since = watermarks.replay_since(watermark, options.full)
    reader = conns.readers[step.source]
    topic = settings.topic(step.source, rows_of.table.name, rows_of.table.schema)
    target = ReplayTarget(
        topic=topic, system=step.source,
        database=describe(settings.dsn(step.source)).rsplit("/", 1)[-1], schema=rows_of.table.schema,
        table=rows_of.table.name, key_columns=rows_of.key_columns, run_id=str(job.run_id), job_id=str(job.id),
        mapping=step.mapping.name, create=create, source_name=f"{settings.topic_prefix}.{step.source}",
        key_format=await key_formats.learn(settings, topic))
    latest = watermarks.LatestSeen()
    modified_on = step.mapping.side(step.source).modified_on
    publisher.reset()
    replayed = 0
    next_report = 0.0
    cancelled = False
    hierarchy = bool(rows_of.parent_columns)
    depth: Any = None

    async def poll() -> None:
        reporter.update(step.label, replayed=replayed, applied=await _applied(state, job.id))

    async with rows_of.snapshot(reader, since, options.chunk, by_depth=hierarchy) as (total, chunks), \
            contextlib.aclosing(chunks):
        reporter.started(step.label, total)
        async for rows in chunks:
            for row in rows:
                latest.see(row.get(modified_on))
            for wave_depth, wave in _waves(rows) if hierarchy else [(None, rows)]:
                if hierarchy and wave_depth != depth and replayed:
                    # a hierarchy level by level: the parents of this level are coupled before it is replayed
                    last = await publisher.flush()
                    if not await wait_processed(state, settings.consumer_group, last, stop=stop,
                                                stall_timeout=options.stall_timeout, check=host.check,
                                                on_poll=poll):
                        cancelled = True
                        break
                depth = wave_depth
                await publisher.publish(target, wave)
                replayed += len(wave)
            if cancelled:
                break
            if time.monotonic() >= next_report:
                reporter.update(step.label, replayed=replayed, applied=await _applied(state, job.id))
                next_report = time.monotonic() + PROGRESS_EVERY
            if stop.is_set():
                cancelled = True
                break
    last = await publisher.flush()
    if cancelled:
        reporter.finished(step.label, replayed=replayed, applied=await _applied(state, job.id),
                          outcome="cancelled")
        return "cancelled", latest.value

    done = await wait_processed(state, settings.consumer_group, last, stop=stop,
                                stall_timeout=options.stall_timeout, check=host.check, on_poll=poll)
    reporter.finished(step.label, replayed=replayed, applied=await _applied(state, job.id),
                      outcome="done" if done else "cancelled")
    return ("done" if done else "cancelled"), latest.value
