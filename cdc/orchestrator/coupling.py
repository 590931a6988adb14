"""Coupling by hand and by match: `cdc couple`, `cdc uncouple`, `cdc match-couple`.

Each records a job of kind 'coupling' (coupled / uncoupled counters). Couplings are written under the same
advisory locks the worker takes on a record, so a coupling made here never races the worker creating a partner
for the same record.

Match-based coupling uses the worker's own candidate search (`consumers.situation.find_candidates`: uncoupled,
in-filter records whose match fields agree, priority by priority). A pair is coupled only when the match is
unique both ways — the ERP record finds exactly one CRM record and that CRM record finds exactly this ERP record
— so nothing is guessed: every other case is listed as ambiguous, and records without any match as missing.
`--create-missing` replays the missing records with creation allowed; the worker creates and couples them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from cdc.database import describe
from cdc.errors import CdcError, ConfigError
from cdc.mapping.model import MappingFile, TableMapping
from cdc.orchestrator import runs
from cdc.orchestrator.links import ReadOnly, read_only
from cdc.orchestrator.progress import Reporter
from cdc.orchestrator.replay import Publisher, ReplayTarget, wait_processed
from cdc.orchestrator.runner import STALL_TIMEOUT, start_producer
from cdc.orchestrator.sources import CHUNK, SideRows
from cdc.orchestrator.workers import WorkerFactory, WorkerHost
from cdc.pair import SYSTEMS, System, other
from cdc.settings import Settings
from cdc.state import couplings, jobs
from cdc.state.couplings import NotCoupled
from cdc.state.jobs import Job
from cdc.topics import key_formats
from cdc.values import CoercionError, canonical, coerce, key_text, key_values
from consumers import Change, find_candidates, lock_id, lock_records


def _mapping(mapping_file: MappingFile, name: str) -> TableMapping:
    try:
        return mapping_file.get(name)
    except KeyError:
        names = ", ".join(m.name for m in mapping_file.mappings)
        raise ConfigError(f"no mapping named {name!r}; the mapping file has {names}") from None


def normal_key(ro: ReadOnly, mapping: TableMapping, system: System, key: str) -> str:
    """A key as the state database names it (e.g. a UUID in lower case); CdcError when it cannot be one."""
    table = ro.table(mapping, system)
    types = [table.columns[c].type_name for c in table.primary_key]
    try:
        if len(types) == 1:
            return str(canonical(coerce(key.strip(), types[0])))
        return key_text(key_values(key.strip(), table.primary_key, types), table.primary_key)
    except CoercionError as exc:
        if len(types) == 1:
            raise CdcError(f"{key!r} is not a key of {system.upper()} table {table.name} ({types[0]})") from None
        raise CdcError(f"{key!r} is not a key of {system.upper()} table {table.name} "
                       f"({', '.join(table.primary_key)}): {exc}") from None


async def _locked(ro: ReadOnly, mapping: str, pairs: list[tuple[str, str]]) -> None:
    await lock_records(ro.state, {lock_id(mapping, "erp", e) for e, _ in pairs}
                       | {lock_id(mapping, "crm", c) for _, c in pairs})


async def _coupling_job(ro: ReadOnly, mapping: str, message: str, counts: dict[str, int],
                        run_id: Any = None) -> Job:
    job = await jobs.start_job(ro.state, mapping, "coupling", None, run_id, message)
    if counts:
        await jobs.add_counts(ro.state, job.id, counts)
    return job


# ---------------------------------------------------------------- couple / uncouple

async def couple(settings: Settings, mapping_file: MappingFile, name: str, erp_key: str, crm_key: str) -> Job:
    """Couple two existing records of the mapping's tables; AlreadyCoupled when either one is coupled."""
    mapping = _mapping(mapping_file, name)
    async with read_only(settings, mapping_file) as ro:
        keys: dict[System, str] = {}
        for system, key in (("erp", erp_key), ("crm", crm_key)):
            keys[system] = normal_key(ro, mapping, system, key)  # type: ignore[index]
            found = await ro.links[system].rows_by_key(mapping.side(system).table, [keys[system]])  # type: ignore[index]
            if not found:
                raise CdcError(f"{mapping.name}: no {system.upper()} record {key!r} in {mapping.side(system).table}")
        async with ro.state.transaction():
            await _locked(ro, mapping.name, [(keys["erp"], keys["crm"])])
            await couplings.couple(ro.state, mapping.name, keys["erp"], keys["crm"])
            job = await _coupling_job(ro, mapping.name, f"coupled ERP {keys['erp']} with CRM {keys['crm']} by hand",
                                      {"coupled": 1})
            await jobs.finish_job(ro.state, job.id, "succeeded")
        return await _reload(ro, job)


async def uncouple(settings: Settings, mapping_file: MappingFile, name: str, *, erp_key: str | None = None,
                   crm_key: str | None = None, everything: bool = False) -> Job:
    """Remove one record's coupling (by either key) or all of the mapping's; NotCoupled when there is none."""
    mapping = _mapping(mapping_file, name)
    async with read_only(settings, mapping_file) as ro:
        async with ro.state.transaction():
            if everything:
                removed = await couplings.uncouple(ro.state, mapping.name, all=True)
                what = f"removed all {removed:,} coupling(s)"
            else:
                system: System = "erp" if erp_key is not None else "crm"
                key = normal_key(ro, mapping, system, erp_key if erp_key is not None else crm_key or "")
                found = await couplings.fetch_one(ro.state, mapping.name, system, key)
                if found is None:
                    raise NotCoupled(f"{mapping.name}: {system.upper()} record {key!r} is not coupled")
                await _locked(ro, mapping.name, [(found.erp_key, found.crm_key)])
                removed = await couplings.uncouple(ro.state, mapping.name, erp_key=found.erp_key)
                what = f"uncoupled ERP {found.erp_key} from CRM {found.crm_key}"
            job = await _coupling_job(ro, mapping.name, what, {"uncoupled": removed})
            await jobs.finish_job(ro.state, job.id, "succeeded")
        return await _reload(ro, job)


async def _reload(ro: ReadOnly, job: Job) -> Job:
    return await jobs.get_job(ro.state, job.id) or job


# ---------------------------------------------------------------- match-couple

@dataclass(frozen=True)
class Ambiguous:
    system: System
    key: str
    candidates: tuple[str, ...]


@dataclass(frozen=True)
class Missing:
    system: System
    key: str
    creatable: bool


@dataclass
class MatchReport:
    mapping: str
    coupled: list[tuple[str, str]] = field(default_factory=list)
    ambiguous: list[Ambiguous] = field(default_factory=list)
    missing: list[Missing] = field(default_factory=list)
    replayed: int = 0
    job: Job | None = None
    worker: str = ""
    cancelled: bool = False

    def as_json(self) -> dict[str, Any]:
        from cdc.orchestrator.progress import job_json, plain

        return {"mapping": self.mapping, "coupled": [{"erp_key": e, "crm_key": c} for e, c in self.coupled],
                "ambiguous": plain(self.ambiguous), "missing": plain(self.missing), "replayed": self.replayed,
                "worker": self.worker, "cancelled": self.cancelled,
                "job": job_json(self.job) if self.job is not None else None}


def first_match(groups: tuple[tuple[dict[str, Any], ...], ...], key_columns: Sequence[str]) -> list[str]:
    """The keys of the first match priority that found anything (the rule of match-based coupling)."""
    for group in groups:
        if group:
            return sorted(key_text(row, key_columns) for row in group)
    return []


async def _uncoupled(ro: ReadOnly, mapping: TableMapping, system: System, chunk: int
                     ) -> AsyncIterator[list[Change]]:
    rows_of = SideRows(mapping, system, ro.table(mapping, system))
    async with ro.links[system].reader.acquire() as conn:
        async with rows_of.snapshot(conn, None, chunk) as (_, chunks):
            async for rows in chunks:
                keyed = {rows_of.key_of(row): row for row in rows}
                coupled = await couplings.fetch_by_keys(ro.state, mapping.name, system, list(keyed))
                changes = [Change(system, "r", key, row) for key, row in keyed.items() if key not in coupled]
                if changes:
                    yield changes


async def _candidates(ro: ReadOnly, mapping: TableMapping, system: System, changes: list[Change]
                      ) -> dict[str, list[str]]:
    """Per change key: the keys of the other side's records it matches (first priority with a match)."""
    destination = other(system)
    found = await find_candidates(ro.state, ro.links[destination], mapping, system, changes,
                                  list(range(len(changes))), {})
    key_columns = ro.table(mapping, destination).primary_key
    return {c.key: first_match(found.get(i, ()), key_columns) for i, c in enumerate(changes)}


async def match_couple(settings: Settings, mapping_file: MappingFile, name: str, *, create_missing: bool = False,
                       stop: asyncio.Event | None = None, reporter: Reporter | None = None, chunk: int = CHUNK,
                       stall_timeout: float = STALL_TIMEOUT, worker: WorkerFactory | None) -> MatchReport:
    mapping = _mapping(mapping_file, name)
    if not mapping.match_on:
        raise ConfigError(f"mapping {mapping.name} has no match_on fields to couple by")
    stop = stop or asyncio.Event()
    report = MatchReport(mapping.name)
    async with read_only(settings, mapping_file) as ro:
        listed: set[tuple[System, str]] = set()
        # 1. ERP records with exactly one CRM match that matches them back and only them
        async for changes in _uncoupled(ro, mapping, "erp", chunk):
            matched = await _candidates(ro, mapping, "erp", changes)
            proposed = {key: found[0] for key, found in matched.items() if len(found) == 1}
            for key, found in matched.items():
                if len(found) > 1:
                    report.ambiguous.append(Ambiguous("erp", key, tuple(found)))
                    listed.add(("erp", key))
            back = await _back(ro, mapping, sorted(set(proposed.values())))
            pairs = []
            for erp_key, crm_key in proposed.items():
                if back.get(crm_key) == [erp_key]:
                    pairs.append((erp_key, crm_key))
                else:
                    report.ambiguous.append(Ambiguous("erp", erp_key, tuple(sorted({crm_key, *back.get(crm_key, [])}))))
                    listed.add(("erp", erp_key))
            report.coupled += await _couple_pairs(ro, mapping.name, pairs)
            report.missing += [Missing("erp", key, mapping.allows("erp")) for key, found in matched.items()
                               if not found]
            if stop.is_set():
                report.cancelled = True
                break
        # 2. CRM records still uncoupled: the ones that match nothing are missing, the others ambiguous
        if not report.cancelled:
            async for changes in _uncoupled(ro, mapping, "crm", chunk):
                matched = await _candidates(ro, mapping, "crm", changes)
                for key, found in matched.items():
                    if not found:
                        report.missing.append(Missing("crm", key, mapping.allows("crm")))
                    elif ("crm", key) not in listed:
                        report.ambiguous.append(Ambiguous("crm", key, tuple(found)))
                if stop.is_set():
                    report.cancelled = True
                    break
        run = await runs.start(ro.state, "match", {"mapping": mapping.name, "create_missing": create_missing})
        report.job = await _coupling_job(
            ro, mapping.name, f"match-couple: {len(report.coupled):,} coupled, {len(report.ambiguous):,} ambiguous, "
            f"{len(report.missing):,} without a match", {"coupled": len(report.coupled)}, run.id)
        creatable = [m for m in report.missing if m.creatable]
        status = "cancelled" if report.cancelled else "succeeded"
        if create_missing and creatable and not report.cancelled:
            done = await _create_missing(settings, mapping_file, ro, mapping, report, creatable, stop, reporter,
                                         stall_timeout, worker)
            status = "succeeded" if done else "cancelled"
            report.cancelled = not done
        await jobs.finish_job(ro.state, report.job.id, status)  # type: ignore[arg-type]
        await runs.finish(ro.state, run.id, status)  # type: ignore[arg-type]
        report.job = await _reload(ro, report.job)
    return report


async def _back(ro: ReadOnly, mapping: TableMapping, crm_keys: list[str]) -> dict[str, list[str]]:
    """For proposed CRM partners: the ERP records each one matches."""
    if not crm_keys:
        return {}
    rows = await ro.links["crm"].rows_by_key(mapping.crm.table, crm_keys)
    changes = [Change("crm", "r", key, row) for key, row in rows.items()]
    return await _candidates(ro, mapping, "crm", changes) if changes else {}


async def _couple_pairs(ro: ReadOnly, mapping: str, pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    done = []
    for erp_key, crm_key in pairs:
        try:
            async with ro.state.transaction():
                await _locked(ro, mapping, [(erp_key, crm_key)])
                await couplings.couple(ro.state, mapping, erp_key, crm_key)
            done.append((erp_key, crm_key))
        except couplings.AlreadyCoupled:
            continue  # coupled meanwhile (by the worker or another command): nothing to do
    return done


async def _create_missing(settings: Settings, mapping_file: MappingFile, ro: ReadOnly, mapping: TableMapping,
                          report: MatchReport, missing: list[Missing], stop: asyncio.Event,
                          reporter: Reporter | None, stall_timeout: float, worker: WorkerFactory | None) -> bool:
    """Replay the missing records with creation allowed, on the match job; True when all were processed. `worker`
    makes the in-process worker started when the consumer group has none."""
    from cdc.topics.admin import ensure_topics

    assert report.job is not None
    await ensure_topics(settings, mapping=mapping_file)
    producer = await start_producer(settings)
    try:
        async with WorkerHost(settings, mapping_file, worker) as host:
            report.worker = "in-process" if host.started else f"consumer group {settings.consumer_group}"
            if host.started and reporter is not None:
                reporter.note(f"no worker in consumer group {settings.consumer_group}: started one in this process")
            publisher = Publisher(producer)
            for system in SYSTEMS:
                keys = [m.key for m in missing if m.system == system]
                if not keys:
                    continue
                table = ro.table(mapping, system)
                topic = settings.topic(system, table.name, table.schema)
                target = ReplayTarget(
                    topic=topic, system=system,
                    database=describe(settings.dsn(system)).rsplit("/", 1)[-1], schema=table.schema,
                    table=table.name, key_columns=tuple(table.primary_key), run_id=str(report.job.run_id),
                    job_id=str(report.job.id), mapping=mapping.name, create=True,
                    source_name=f"{settings.topic_prefix}.{system}",
                    key_format=await key_formats.learn(settings, topic))
                publisher.reset()
                for start in range(0, len(keys), CHUNK):
                    rows = await ro.links[system].rows_by_key(table.name, keys[start:start + CHUNK])
                    await publisher.publish(target, list(rows.values()))
                    report.replayed += len(rows)
                last = await publisher.flush()
                if not await wait_processed(ro.state, settings.consumer_group, last, stop=stop,
                                            stall_timeout=stall_timeout, check=host.check):
                    return False
    finally:
        with contextlib.suppress(Exception):
            await producer.stop()
    return True
