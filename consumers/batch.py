"""Processing one batch of changes: decide, apply, and record — state and offsets in one transaction.

Order of effects, and why it is safe to crash anywhere (docs/exactly-once.md):
1. the state transaction opens and takes advisory locks on the records (workers exclude each other);
2. decisions are made on freshly loaded couplings and rows;
3. the writes are announced (intents, committed on a second connection), then destination writes commit
   (idempotent: upserts on deterministic keys, column sets, deletes by key);
4. couplings, job counters, errors, parked events and the consumed offsets commit together.
A crash before 4 replays the batch: the writes find their effect already there; counters were never counted;
what a crashed batch wrote is restored from its intents first, so a source deleted or changed back meanwhile
still syncs.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from uuid import UUID

import asyncpg

from cdc.mapping.model import MappingFile
from cdc.mapping.order import dependency_order
from cdc.mapping.transforms import TransformError, ValueMappingError
from cdc.pair import Pair, System, other
from cdc.settings import Settings
from cdc.state import couplings as coupling_store
from cdc.state import intents, job_errors, jobs, offsets, record_log, update_intents
from cdc.state import mapping_settings as flags
from cdc.state.couplings import Coupling
from cdc.state.intents import Intent
from cdc.state.parking import Parked
from cdc.state.update_intents import UpdateIntent
from cdc.values import CoercionError
from consumers import parking, series
from consumers.appliers.writer import TableWrite, apply
from consumers.decisions import echo
from consumers.decisions.outcome import CouplingChange, Decision
from consumers.decisions.record import Change, Shapes, decide
from consumers.incoming import Incoming
from consumers.recovery import Recovery, recover_updates
from consumers.situation import load_situations
from consumers.systems import SystemLink
from schemas.change_event import notice

TopicPartition = tuple[str, int]
JobRef = UUID | tuple[str, str]
"""A job counted on: a replay's job by id, the live job by (mapping, direction), its id looked up when needed."""
SETTLED = frozenset({"applied", "unchanged", "coupled", "created", "restored", "deleted", "uncoupled"})
"""Verdicts that leave a record in sync: its open and parked errors close by themselves."""


class Engine:
    def __init__(self, settings: Settings, mapping_file: MappingFile, links: dict[System, SystemLink]) -> None:
        self.settings = settings
        self.mapping_file = mapping_file
        self.links = links
        self._flags: dict[str, bool] = {}
        self._flags_at = datetime.min.replace(tzinfo=UTC)
        self.order = dependency_order(mapping_file)

    def shapes(self, mapping_name: str) -> Shapes:
        m = self.mapping_file.get(mapping_name)
        erp = self.links["erp"].tables[m.erp.table]
        crm = self.links["crm"].tables[m.crm.table]
        ek, ck = erp.columns[erp.primary_key[0]], crm.columns[crm.primary_key[0]]
        return Shapes(erp, crm, ek.type_name, ck.type_name, ek.max_length, ck.max_length)

    async def _recover_updates(self, state: asyncpg.Connection) -> None:
        await recover_updates(state, self.links, self.mapping_file)

    async def sync_only_coupled(self, state: asyncpg.Connection) -> dict[str, bool]:
        now = datetime.now(UTC)
        if now - self._flags_at > timedelta(seconds=1):
            self._flags = await flags.effective_sync_only_coupled(state, self.mapping_file)
            self._flags_at = now
        return self._flags

    async def process(self, state: asyncpg.Connection, items: list[Incoming], *, announcer: asyncpg.Connection,
                      consumed: dict[TopicPartition, int] | None = None, group: str | None = None
                      ) -> list[tuple[Incoming, Decision]]:
        """Decide and apply `items` (in order per record); commit state and `consumed` offsets atomically.

        `announcer` is a second state connection, outside the transaction: writes are announced on it
        (`cdc.state.intents`) and durable before they are made."""
        results: list[tuple[Incoming, Decision]] = []
        async with state.transaction():
            # nothing left behind by a crash (the usual case): no recovery look-ups in this batch
            recovery = Recovery(possible=await intents.exist(state))
            if consumed and group:
                claimed = await offsets.claim(state, group, list(consumed))
                items = [i for i in items if i.offset is None or i.topic is None
                         or i.offset >= claimed.get((i.topic, i.partition or 0), 0)]
            only_coupled = await self.sync_only_coupled(state)
            for round_items in _rounds(items):
                results.extend(await self._round(state, announcer, round_items, only_coupled, recovery))
            await self._count_restored(state, recovery)
            # last: an intent deleted here stays locked until commit, and announcing it again would wait on it
            for (mapping_name, system), keys in _by_record_set(recovery.forget).items():
                await intents.forget(state, mapping_name, system, keys)
            if consumed and group:
                await offsets.store(state, group, consumed)
        return results

    async def _round(self, state: asyncpg.Connection, announcer: asyncpg.Connection, items: list[Incoming],
                     only_coupled: dict[str, bool], recovery: Recovery) -> list[tuple[Incoming, Decision]]:
        """Mapping by mapping, each group decided, applied and recorded before the next: creations and updates in
        dependency order (a customer coupled here resolves the lookup of its contact later in the same batch), then
        deletes in reverse dependency order (a contact goes before its customer, and after the updates that moved
        records away from what is deleted)."""
        decided: dict[int, Decision] = {}
        groups: dict[tuple[str, System, bool], list[int]] = defaultdict(list)
        for i, item in enumerate(items):
            groups[(item.mapping.name, item.source, item.change.op == "d")].append(i)
        rank = {m.name: n for n, m in enumerate(self.order)}

        def position(group: tuple[str, System, bool]) -> tuple[bool, int, str]:
            mapping_name, source, deleting = group
            return deleting, -rank[mapping_name] if deleting else rank[mapping_name], source

        for (mapping_name, source, _), indexes in sorted(groups.items(), key=lambda g: position(g[0])):
            pending = indexes
            held: dict[int, Decision] = {}  # waiting for a record of this group that may be coupled in it
            while pending:
                group_decided = await self._decide_group(state, items, mapping_name, source, pending, only_coupled,
                                                         recovery)
                pending = _second_claims(group_decided, source)
                for i in pending:
                    del group_decided[i]
                await self._announce(state, announcer, items, group_decided, mapping_name, source, recovery)
                await self._apply(items, group_decided)
                # a hierarchy: a record waiting for its parent is held back while the parent may be coupled in this
                # group, and decided again once it is
                coupled_now = {(mapping_name, source, items[i].change.key) for i, d in group_decided.items()
                               if d.verdict in ("created", "coupled", "restored")}
                for i, d in list(group_decided.items()):
                    if d.verdict == "parked" and any(w[:2] == (mapping_name, source) for w in d.waiting):
                        held[i] = group_decided.pop(i)
                again = [i for i, d in held.items() if coupled_now.intersection(d.waiting)]
                for i in again:
                    del held[i]
                pending = sorted([*pending, *again])
                parking.unpark_replays(self.mapping_file, items, mapping_name, group_decided)
                await self._record(state, items, group_decided)
                decided.update(group_decided)
            if held:
                parking.unpark_replays(self.mapping_file, items, mapping_name, held)
                await self._record(state, items, held)
                decided.update(held)
        return [(items[i], decided[i]) for i in range(len(items))]

    async def _decide_group(self, state: asyncpg.Connection, items: list[Incoming], mapping_name: str,
                            source: System, indexes: list[int], only_coupled: dict[str, bool],
                            recovery: Recovery) -> dict[int, Decision]:
        mapping = self.mapping_file.get(mapping_name)
        decided = await parking.behind(state, items, mapping_name, source, indexes)
        await self._refresh_rows(items, [i for i in indexes if i not in decided], decided)
        live = [i for i in indexes if i not in decided]
        if not live:
            return decided
        changes = [items[i].change for i in live]
        create_flags = {}
        for n, i in enumerate(live):
            replay = items[i].event.replay
            create_flags[n] = (not replay.create) if replay is not None else only_coupled.get(mapping_name, True)
        situations = await load_situations(state, self.links, mapping, source, changes,
                                           sync_only_coupled=create_flags, recovery=recovery,
                                           recover_updates=self._recover_updates)
        for n, i in enumerate(live):
            if items[i].keep is not None:  # an operator's resolution of a conflict (cdc resolve)
                situations[n] = dataclasses.replace(situations[n], keep=items[i].keep, retry=True)
        shapes = self.shapes(mapping_name)
        # creations on a side numbered by its own series: keys allocated before anything is announced or written
        situations = await series.allocate(state, self.links, mapping, source, changes, situations, shapes)
        for n, i in enumerate(live):
            try:
                decided[i] = decide(mapping, changes[n], situations[n], shapes)
            except (CoercionError, TransformError, ValueMappingError) as exc:  # this record fails, not the batch
                decided[i] = Decision("failed", str(exc), counts={"failed": 1}, error=str(exc))
            stored = situations[n].coupling
            if decided[i].verdict in ("applied", "unchanged") and stored is not None and (
                    stored.skipped or getattr(stored, "failure_count", 0) > 0):
                decided[i] = dataclasses.replace(decided[i], recheck_partner=True)
            if situations[n].intent is not None and decided[i].coupling is not None:
                recovery.forget.add((mapping_name, source, changes[n].key))
            if decided[i].verdict == "unchanged" and recovery.restored_source(mapping_name, source, changes[n].key):
                # the restored creation is counted (inserted) once, not also as unchanged. Its partner is decided
                # again: a change made to it while the coupling was missing was passed over then, and the
                # restored fingerprint now says its event carries it (a lost update under worker kills otherwise)
                decided[i] = dataclasses.replace(decided[i], counts={}, recheck_partner=True,
                                                 reason="coupling restored after an interruption; nothing to write")
            elif (decided[i].verdict == "unchanged" and items[i].event.replay is None
                  and echo.is_echo(mapping, changes[n], situations[n].coupling)):
                decided[i] = dataclasses.replace(decided[i], counts={}, reason=echo.REASON)  # not a user change
        await parking.fail_never_coupled(self.links, self.mapping_file, items, mapping_name, decided)
        return decided

    async def _refresh_rows(self, items: list[Incoming], indexes: list[int], decided: dict[int, Decision]) -> None:
        """Decide on the record as it is now, not as the event saw it: an event is a notice that a record changed.

        A stale image can neither undo a write the sync made since (conflicts stay resolved) nor let a replay
        overwrite a newer change; what changed since is carried by the later events of the same record.
        """
        by_table: dict[tuple[System, str], list[int]] = defaultdict(list)
        for i in indexes:
            by_table[(items[i].source, items[i].event.source.table)].append(i)
        for (system, table), group in by_table.items():
            link = self.links[system]
            rows = await link.rows_by_key(table, sorted({items[i].change.key for i in group}))
            for i in group:
                row = rows.get(items[i].change.key)
                if items[i].change.op == "d":
                    if row is not None:
                        decided[i] = Decision("ignored", "deleted, then created again: the newer record wins")
                    continue
                if row is None:
                    decided[i] = Decision("ignored", "record no longer exists (its delete is on the way)")
                    continue
                # asyncpg returns typed Python values already: the row needs no coercion
                item, old = items[i], items[i].change
                change = Change(old.source, old.op, old.key, row, old.position,
                                row.get(item.mapping.side(system).modified_on), old.replay)
                items[i] = dataclasses.replace(item, change=change)

    async def _announce(self, state: asyncpg.Connection, announcer: asyncpg.Connection, items: list[Incoming],
                        decided: dict[int, Decision], mapping_name: str, source: System, recovery: Recovery) -> None:
        """Make the group's writes known before they are made (docs/exactly-once.md): a creation or a match per
        record (`cdc.state.intents`), the updates of coupled records as one row (`cdc.state.update_intents`), which
        this batch's transaction holds until it commits."""
        couplings: list[Intent] = []
        updates: list[UpdateIntent] = []
        for i, d in decided.items():
            if d.writes and d.coupling is not None and not d.coupling.remove and d.partner_key is not None:
                if d.verdict in _KINDS:
                    couplings.append(_intent(items[i], d))
                else:
                    updates.append(_update_intent(items[i], d))
        await intents.announce(announcer, mapping_name, source, couplings)
        for intent in couplings:
            recovery.handled(intent)
        if updates:
            await update_intents.hold(state, await update_intents.announce(announcer, mapping_name, source, updates))

    async def _apply(self, items: list[Incoming], decided: dict[int, Decision]) -> None:
        """The group's writes, one transaction per system: the source system's first (the values a creation or a
        match writes back, a conflict's reverse writes), then the destination's. A crash between the two then
        leaves a creation unwritten (made again on its announced key) rather than written without its write-back,
        which recovery would take for complete (`consumers.recovery`)."""
        per_system: dict[System, list[TableWrite]] = defaultdict(list)
        sources: set[System] = set()
        for i, decision in decided.items():
            mapping = items[i].mapping
            sources.add(items[i].source)
            for write in decision.writes:
                table = self.links[write.system].tables[mapping.side(write.system).table]
                per_system[write.system].append(TableWrite(table, write, i))
        failed: set[int] = set()
        for system, writes in sorted(per_system.items(), key=lambda sw: sw[0] not in sources):
            # a record whose write failed in the first system is not half-written into the second
            refusals = await apply(self.links[system].writer, [tw for tw in writes if tw.ref not in failed])
            failed.update(refusals)
            for i, refusal in refusals.items():
                decided[i] = parking.refused(decided[i], refusal)

    async def _record(self, state: asyncpg.Connection, items: list[Incoming], decided: dict[int, Decision]) -> None:
        now = datetime.now(UTC)
        upserts: list[Coupling] = []
        entries: list[record_log.LogEntry] = []
        settled: dict[tuple[str, System], list[str]] = defaultdict(list)
        settled_pairs: dict[str, list[str]] = defaultdict(list)  # ERP keys: a conflict is the pair's
        unparked: dict[tuple[str, System], list[str]] = defaultdict(list)
        recheck: list[Parked] = []
        coupled_now: set[str] = set()  # records coupled here: errors waiting for them are tried again
        errors: list[tuple[JobRef | None, Incoming, Decision]] = []
        job_counts: dict[JobRef, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for i in sorted(decided):
            item, decision = items[i], decided[i]
            mapping, source = item.mapping, item.source
            direction = f"to_{other(source)}"
            job_id: JobRef | None = None
            parked = decision.verdict == "parked"
            if decision.verdict in SETTLED:
                settled[(mapping.name, source)].append(item.change.key)
                if decision.verdict in ("coupled", "created") and decision.partner_key is not None:
                    settled[(mapping.name, other(source))].append(decision.partner_key)  # coupled from this side
                erp_key = Pair.oriented(source, item.change.key, decision.partner_key).erp
                if erp_key is not None:
                    settled_pairs[mapping.name].append(erp_key)
                if decision.verdict in ("coupled", "created", "restored") and decision.partner_key is not None:
                    coupled_now.update((job_errors.lookup_tag(mapping.name, source, item.change.key),
                                        job_errors.lookup_tag(mapping.name, other(source), decision.partner_key)))
                if decision.recheck_partner and decision.partner_key is not None:
                    recheck.append(parking.recheck(mapping, other(source), decision.partner_key))
            elif not parked:
                unparked[(mapping.name, source)].append(item.change.key)
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
                    await self._store_couplings(state, mapping.name, upserts)
                    upserts = []
                    if await coupling_store.fetch_one(state, mapping.name, "erp", change.erp_key) is None:
                        upserts.append(_coupling(mapping.name, change))
                        await self._store_couplings(state, mapping.name, upserts)
                        upserts = []
                    await coupling_store.mark_failure(state, mapping.name, change.erp_key, direction,
                                                      change.failure)  # type: ignore[arg-type]
                else:
                    upserts.append(_coupling(mapping.name, change))
            if decision.error or parked:
                errors.append((job_id, item, decision))
            await parking.park(state, item, decision)
            entries.append(record_log.LogEntry(mapping.name, source, item.change.key, decision.verdict,
                                               decision.partner_key, item.event.stable_id(), item.change.op,
                                               decision.reason[:500]))
        await self._store_couplings(state, "", upserts)
        # a record that synced cleanly (or was coupled from the other side) closes its errors; one no longer waiting
        # closes its parked error
        for mapping_name in sorted({m for m, _ in settled} | set(settled_pairs)):
            await job_errors.settle(state, mapping_name, settled.get((mapping_name, "erp"), []),
                                    settled.get((mapping_name, "crm"), []), settled_pairs.get(mapping_name, []))
        await parking.close_parked_errors(state, unparked)
        await parking.recheck_now(state, recheck)
        await job_errors.requeue_waiting(state, sorted(coupled_now))
        window = self.settings.live_job_window_seconds
        live_ids: dict[JobRef, UUID] = {}
        for ref in {ref for ref, _, _ in errors if isinstance(ref, tuple)}:
            live_ids[ref] = await jobs.live_job(state, *ref, now, window)  # type: ignore[arg-type]
        for ref, item, decision in errors:
            job_id = live_ids.get(ref, ref) if ref is not None else None
            await self._record_error(state, job_id, item, decision, job_counts[ref] if ref is not None else None)
        for ref, counts in job_counts.items():
            if not isinstance(ref, tuple):
                await jobs.add_counts(state, ref, dict(counts))
            elif ref in live_ids:
                await jobs.add_counts(state, live_ids[ref], dict(counts))
            elif any(counts.values()):
                await jobs.count_live(state, *ref, now, window, dict(counts))  # type: ignore[arg-type]
        await record_log.append_many(state, entries)

    async def _record_error(self, state: asyncpg.Connection, job_id: UUID | None, item: Incoming,
                            decision: Decision, job_counts: dict[str, int] | None) -> None:
        """A failure as an open error; a parked change as a parked error naming what it waits for (one per record:
        the changes parked behind it add none); a conflict as the pair's one open error, counted by the event that
        found it first."""
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
            await parking.record_parked_error(state, self.mapping_file, job_id, item, decision)
            return
        await job_errors.record_error(state, job_id, mapping.name, item.source, item.change.key, other(item.source),
                                      decision.partner_key, decision.error or decision.reason,
                                      detail=decision.detail, event=item.raw,
                                      waiting_for=[job_errors.lookup_tag(*w) for w in decision.waiting] or None)

    async def _count_restored(self, state: asyncpg.Connection, recovery: Recovery) -> None:
        """A restored creation counts as inserted on its job, a restored match as coupled (the crashed attempt's
        counts were rolled back)."""
        now = datetime.now(UTC)
        counts: dict[UUID, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for intent in recovery.restored:
            job_id = intent.job_id or await jobs.live_job(state, intent.mapping, f"to_{other(intent.source)}", now,
                                                          self.settings.live_job_window_seconds)
            counts[job_id]["inserted" if intent.kind == "create" else "coupled"] += 1
        for job_id, by_counter in counts.items():
            await jobs.add_counts(state, job_id, dict(by_counter))

    async def _store_couplings(self, state: asyncpg.Connection, mapping: str, upserts: list[Coupling]) -> None:
        if upserts:
            await coupling_store.upsert_many(state, upserts)


def _coupling(mapping: str, change: CouplingChange) -> Coupling:
    result = {"last_result_to_crm": "success"} if change.direction == "to_crm" else {"last_result_to_erp": "success"}
    return Coupling(mapping=mapping, erp_key=change.erp_key, crm_key=change.crm_key,
                    erp_values=change.erp_values, crm_values=change.crm_values,
                    erp_modified_on=change.erp_modified_on, crm_modified_on=change.crm_modified_on,
                    erp_position=change.erp_position, crm_position=change.crm_position,
                    **result)  # type: ignore[arg-type]


def _second_claims(decided: dict[int, Decision], source: System) -> list[int]:
    """Changes that would couple a partner another change of the same batch already claims: they are decided
    again once the first claim is recorded (then that partner is taken, and they match or create otherwise)."""
    claimed: set[str] = set()
    again: list[int] = []
    for i in sorted(decided):
        decision = decided[i]
        if decision.verdict not in ("coupled", "created") or decision.coupling is None:
            continue
        partner = Pair(decision.coupling.erp_key, decision.coupling.crm_key).other(source)
        if partner in claimed:
            again.append(i)
        claimed.add(partner)
    return again


_KINDS: dict[str, Literal["create", "match"]] = {"created": "create", "coupled": "match"}


def _written(decision: Decision) -> dict[str, dict[str, Any]]:
    writes: dict[str, dict[str, Any]] = defaultdict(dict)
    for w in decision.writes:
        if w.kind != "delete":
            writes[w.system].update(w.values)
    return dict(writes)


def _intent(item: Incoming, decision: Decision) -> Intent:
    """The announcement of a creation or a match: the coupling it will record, the values it writes (and for a
    creation, the new record's key)."""
    c = decision.coupling
    assert c is not None and decision.partner_key is not None
    replay = item.event.replay
    return Intent(item.mapping.name, item.source, item.change.key, decision.partner_key, _KINDS[decision.verdict],
                  c.erp_values, c.crm_values, c.erp_modified_on, c.crm_modified_on, c.erp_position, c.crm_position,
                  _written(decision), UUID(replay.job_id) if replay is not None else None)


def _update_intent(item: Incoming, decision: Decision) -> UpdateIntent:
    """The announcement of writes into a coupled pair: the values, and the fingerprints of the fields they write
    (what the batch's step 4 will record about them)."""
    c = decision.coupling
    assert c is not None
    writes = _written(decision)
    touched = [f for system, values in writes.items() for column in values
               for f in item.mapping.fields_writing(system).get(column, ())]  # type: ignore[arg-type]
    erp_values = {column: c.erp_values[column] for f in touched for column in f.columns("erp")
                  if column in c.erp_values}
    crm_values = {column: c.crm_values[column] for f in touched for column in f.columns("crm")
                  if column in c.crm_values}
    return UpdateIntent(c.erp_key, c.crm_key, writes, erp_values, crm_values, c.erp_modified_on, c.crm_modified_on,
                        c.erp_position, c.crm_position)


def _by_record_set(keys: set[tuple[str, System, str]]) -> dict[tuple[str, System], list[str]]:
    grouped: dict[tuple[str, System], list[str]] = defaultdict(list)
    for mapping_name, system, key in sorted(keys):
        grouped[(mapping_name, system)].append(key)
    return grouped


def _rounds(items: list[Incoming]) -> list[list[Incoming]]:
    """Split so each round holds at most one change per record: later changes see the earlier ones' effects."""
    rounds: list[list[Incoming]] = []
    seen: dict[tuple[str, str, str], int] = {}
    for item in items:
        identity = (item.mapping.name, item.source, item.change.key)
        n = seen.get(identity, -1) + 1
        seen[identity] = n
        if n == len(rounds):
            rounds.append([])
        rounds[n].append(item)
    return rounds
