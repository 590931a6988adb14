"""The record stage: what a group's decisions leave in the state database, in the batch's state transaction —
couplings, job counters, errors, parked changes and the record log (docs/exactly-once.md, step 4)."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from uuid import UUID

import asyncpg

from cdc.mapping.model import MappingFile
from cdc.pair import Pair, System, other
from cdc.settings import Settings
from cdc.state import couplings as coupling_store
from cdc.state import intents, job_errors, jobs, record_log
from cdc.state.couplings import Coupling
from cdc.state.parking import Parked
from consumers import parking
from consumers.decisions.outcome import CouplingChange
from consumers.inflight import InFlight
from consumers.recovery import Recovery
from schemas.change_event import notice

JobRef = UUID | tuple[str, str]
"""A job counted on: a replay's job by id, the live job by (mapping, direction), its id looked up when needed."""
SETTLED = frozenset({"applied", "unchanged", "coupled", "created", "restored", "deleted", "uncoupled"})
"""Verdicts that leave a record in sync: its open and parked errors close by themselves."""


async def record(state: asyncpg.Connection, settings: Settings, mapping_file: MappingFile,
                 flights: list[InFlight]) -> None:
    """The group's decisions, in order: couplings stored, changed or removed; a record that synced cleanly (or was
    coupled from the other side) closes its errors, one no longer waiting its parked error; failures and parked
    changes as errors; counters on their jobs; one record-log entry per change."""
    now = datetime.now(UTC)
    upserts: list[Coupling] = []
    entries: list[record_log.LogEntry] = []
    settled: dict[tuple[str, System], list[str]] = defaultdict(list)
    settled_pairs: dict[str, list[str]] = defaultdict(list)  # ERP keys: a conflict is the pair's
    unparked: dict[tuple[str, System], list[str]] = defaultdict(list)
    recheck: list[Parked] = []
    coupled_now: set[str] = set()  # records coupled here: errors waiting for them are tried again
    errors: list[tuple[JobRef | None, InFlight]] = []
    job_counts: dict[JobRef, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for f in flights:
        item, decision = f.item, f.decision
        mapping, source, key = item.mapping, item.source, item.change.key
        direction = f"to_{other(source)}"
        job_id: JobRef | None = None
        parked = decision.verdict == "parked"
        if decision.verdict in SETTLED:
            settled[(mapping.name, source)].append(key)
            if decision.verdict in ("coupled", "created") and decision.partner_key is not None:
                settled[(mapping.name, other(source))].append(decision.partner_key)  # coupled from this side
            erp_key = Pair.oriented(source, key, decision.partner_key).erp
            if erp_key is not None:
                settled_pairs[mapping.name].append(erp_key)
            if decision.verdict in ("coupled", "created", "restored") and decision.partner_key is not None:
                coupled_now.update((job_errors.lookup_tag(mapping.name, source, key),
                                    job_errors.lookup_tag(mapping.name, other(source), decision.partner_key)))
            if decision.recheck_partner and decision.partner_key is not None:
                recheck.append(parking.recheck(mapping, other(source), decision.partner_key))
        elif not parked:
            unparked[(mapping.name, source)].append(key)
        if decision.counted or decision.error or parked:
            # a replay counts on its run's job; a replay retried later (cdc retry) on the live job of now: a
            # finished job stays as it finished
            if item.event.replay is not None and item.parked_id is None:
                job_id = UUID(item.event.replay.job_id)
            else:
                job_id = (mapping.name, direction)  # the live job's id is looked up only if an error needs it
            for counter, n in decision.counts.items():
                job_counts[job_id][counter] += n
        change = decision.coupling
        if change is not None:
            if change.remove:
                await coupling_store.uncouple(state, mapping.name, erp_key=change.erp_key)
            elif change.failure:
                await _store_couplings(state, upserts)
                upserts = []
                if await coupling_store.fetch_one(state, mapping.name, "erp", change.erp_key) is None:
                    await _store_couplings(state, [_coupling(mapping.name, change)])
                await coupling_store.mark_failure(state, mapping.name, change.erp_key, direction,
                                                  change.failure)  # type: ignore[arg-type]
            else:
                upserts.append(_coupling(mapping.name, change))
        if decision.error or parked:
            errors.append((job_id, f))
        await parking.park(state, item, decision)
        entries.append(record_log.LogEntry(mapping.name, source, key, decision.verdict, decision.partner_key,
                                           item.event.stable_id(), item.change.op, decision.reason[:500]))
    await _store_couplings(state, upserts)
    for mapping_name in sorted({m for m, _ in settled} | set(settled_pairs)):
        await job_errors.settle(state, mapping_name, settled.get((mapping_name, "erp"), []),
                                settled.get((mapping_name, "crm"), []), settled_pairs.get(mapping_name, []))
    await parking.close_parked_errors(state, unparked)
    await parking.recheck_now(state, recheck)
    await job_errors.requeue_waiting(state, sorted(coupled_now))
    window = settings.live_job_window_seconds
    live_ids: dict[JobRef, UUID] = {}
    for ref in {ref for ref, _ in errors if isinstance(ref, tuple)}:
        live_ids[ref] = await jobs.live_job(state, *ref, now, window)  # type: ignore[arg-type]
    for ref, f in errors:
        job_id = live_ids.get(ref, ref) if ref is not None else None
        await _record_error(state, mapping_file, job_id, f, job_counts[ref] if ref is not None else None)
    for ref, counts in job_counts.items():
        if not isinstance(ref, tuple):
            await jobs.add_counts(state, ref, dict(counts))
        elif ref in live_ids:
            await jobs.add_counts(state, live_ids[ref], dict(counts))
        elif any(counts.values()):
            await jobs.count_live(state, *ref, now, window, dict(counts))  # type: ignore[arg-type]
    await record_log.append_many(state, entries)


async def _record_error(state: asyncpg.Connection, mapping_file: MappingFile, job_id: UUID | None, f: InFlight,
                        job_counts: dict[str, int] | None) -> None:
    """A failure as an open error; a parked change as a parked error naming what it waits for (one per record: the
    changes parked behind it add none); a conflict as the pair's one open error, counted by the event that found it
    first."""
    item, decision = f.item, f.decision
    mapping = item.mapping
    if decision.verdict == "conflict" and decision.coupling is not None and decision.error:
        pair = decision.coupling
        retry = notice("erp", mapping.erp.schema_, mapping.erp.table, mapping.erp.key_columns, pair.erp_key,
                       "conflict")
        _, opened = await job_errors.record_conflict(state, job_id, mapping.name, pair.erp_key, pair.crm_key,
                                                     decision.error, decision.detail, retry)
        if not opened and job_counts is not None:
            job_counts["failed"] -= decision.counts.get("failed", 0)  # counted when it opened
        return
    if decision.verdict == "parked":
        await parking.record_parked_error(state, mapping_file, job_id, item, decision)
        return
    await job_errors.record_error(state, job_id, mapping.name, item.source, item.change.key, other(item.source),
                                  decision.partner_key, decision.error or decision.reason,
                                  detail=decision.detail, event=item.raw,
                                  waiting_for=[job_errors.lookup_tag(*w) for w in decision.waiting] or None)


async def count_restored(state: asyncpg.Connection, settings: Settings, recovery: Recovery) -> None:
    """Once per batch: a restored creation counts as inserted on its job, a restored match as coupled (the crashed
    attempt's counts were rolled back)."""
    now = datetime.now(UTC)
    counts: dict[UUID, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for intent in recovery.restored:
        job_id = intent.job_id or await jobs.live_job(state, intent.mapping, f"to_{other(intent.source)}", now,
                                                      settings.live_job_window_seconds)
        counts[job_id]["inserted" if intent.kind == "create" else "coupled"] += 1
    for job_id, by_counter in counts.items():
        await jobs.add_counts(state, job_id, dict(by_counter))


async def forget_intents(state: asyncpg.Connection, recovery: Recovery) -> None:
    """Once per batch, last: the intents its decisions took over or settled. Last, since an intent deleted here
    stays locked until the batch commits, and announcing it again would wait on it."""
    by_record_set: dict[tuple[str, System], list[str]] = defaultdict(list)
    for mapping_name, system, key in sorted(recovery.forget):
        by_record_set[(mapping_name, system)].append(key)
    for (mapping_name, system), keys in by_record_set.items():
        await intents.forget(state, mapping_name, system, keys)


async def _store_couplings(state: asyncpg.Connection, upserts: list[Coupling]) -> None:
    if upserts:
        await coupling_store.upsert_many(state, upserts)


def _coupling(mapping: str, change: CouplingChange) -> Coupling:
    result = {"last_result_to_crm": "success"} if change.direction == "to_crm" else {"last_result_to_erp": "success"}
    return Coupling(mapping=mapping, erp_key=change.erp_key, crm_key=change.crm_key,
                    erp_values=change.erp_values, crm_values=change.crm_values,
                    erp_modified_on=change.erp_modified_on, crm_modified_on=change.crm_modified_on,
                    erp_position=change.erp_position, crm_position=change.crm_position,
                    **result)  # type: ignore[arg-type]
