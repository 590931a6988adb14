"""Processing one batch of changes: each change through the stages, state and offsets in one transaction.

The batch is split in rounds (at most one change per record), a round in groups (a mapping's changes from one
side, in dependency order, deletes last in reverse order), and each group goes through the stages
(`consumers.stages`), one `InFlight` object per change:

load → lock → recover → situate → decide → settle → announce → write → settle → record

Order of effects, and why it is safe to crash anywhere (docs/exactly-once.md):
1. the state transaction opens; `lock` takes advisory locks on the records (workers exclude each other);
2. `recover` restores what a crashed batch wrote about them from its intents, so a source deleted or changed back
   meanwhile still syncs; `situate` and `decide` work on couplings and rows loaded fresh;
3. `announce` makes the writes known (intents, committed on a second connection), then `write` commits them into
   the destinations (idempotent: column sets on keys, deletes by key, creations on announced keys);
4. `record` writes couplings, job counters, errors and parked changes, and the batch's consumed offsets commit
   with them.
A crash before 4 replays the batch: the writes find their effect already there; counters were never counted.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from operator import attrgetter

import asyncpg

from cdc.mapping.model import MappingFile, TableMapping
from cdc.mapping.order import dependency_order
from cdc.pair import Pair, System
from cdc.settings import Settings
from cdc.state import intents, offsets
from cdc.state import mapping_settings as flags
from consumers.decisions.outcome import Decision
from consumers.decisions.record import Shapes
from consumers.incoming import Incoming
from consumers.inflight import InFlight, rounds
from consumers.recovery import Recovery, recover
from consumers.situation import lock_situations
from consumers.stages.announce import announce
from consumers.stages.decide import decide_each, situate
from consumers.stages.load import load
from consumers.stages.record import count_restored, forget_intents, record
from consumers.stages.settle import settle, settle_refusals, settle_replays
from consumers.stages.write import write
from consumers.systems import SystemLink

TopicPartition = tuple[str, int]


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
            for round_flights in rounds(items):
                await self._round(state, announcer, round_flights, only_coupled, recovery)
                results.extend((f.item, f.decision) for f in round_flights)
            await count_restored(state, self.settings, recovery)
            await forget_intents(state, recovery)
            if consumed and group:
                await offsets.store(state, group, consumed)
        return results

    async def _round(self, state: asyncpg.Connection, announcer: asyncpg.Connection, flights: list[InFlight],
                     only_coupled: dict[str, bool], recovery: Recovery) -> None:
        """Mapping by mapping, each group through all its stages before the next: creations and updates in
        dependency order (a customer coupled here resolves the lookup of its contact later in the same batch), then
        deletes in reverse dependency order (a contact goes before its customer, and after the updates that moved
        records away from what is deleted)."""
        groups: dict[tuple[str, System, bool], list[InFlight]] = defaultdict(list)
        for f in flights:
            groups[(f.mapping.name, f.source, f.change.op == "d")].append(f)
        rank = {m.name: n for n, m in enumerate(self.order)}

        def position(group: tuple[str, System, bool]) -> tuple[bool, int, str]:
            mapping_name, source, deleting = group
            return deleting, -rank[mapping_name] if deleting else rank[mapping_name], source

        for (mapping_name, source, _), group in sorted(groups.items(), key=lambda g: position(g[0])):
            await self._group(state, announcer, self.mapping_file.get(mapping_name), source, group, only_coupled,
                              recovery)

    async def _group(self, state: asyncpg.Connection, announcer: asyncpg.Connection, mapping: TableMapping,
                     source: System, flights: list[InFlight], only_coupled: dict[str, bool],
                     recovery: Recovery) -> None:
        """One group through the stages. Within the group, some changes are decided again: one that would couple a
        partner another change already claims (once that claim is recorded), and, in a hierarchy, a record waiting
        for its parent, held back while the parent may be coupled in this group and decided again once it is."""
        pending = flights
        held: list[InFlight] = []
        while pending:
            await self._decide(state, mapping, source, pending, only_coupled, recovery)
            again = _second_claims(pending, source)
            decided = _without(pending, again)
            await announce(state, announcer, mapping.name, source, decided, recovery)
            await write(self.links, decided)
            settle_refusals(decided)
            coupled_now = {(mapping.name, source, f.key) for f in decided
                           if f.decision.verdict in ("created", "coupled", "restored")}
            waiting = [f for f in decided if f.decision.verdict == "parked"
                       and any(w[:2] == (mapping.name, source) for w in f.decision.waiting)]
            decided = _without(decided, waiting)
            held.extend(waiting)
            released = [f for f in held if coupled_now.intersection(f.decision.waiting)]
            held = _without(held, released)
            pending = sorted([*again, *released], key=_POSITION)
            settle_replays(self.mapping_file, mapping.name, decided)
            await self._record(state, decided)
        if held:
            held.sort(key=_POSITION)
            settle_replays(self.mapping_file, mapping.name, held)
            await self._record(state, held)

    async def _decide(self, state: asyncpg.Connection, mapping: TableMapping, source: System,
                      flights: list[InFlight], only_coupled: dict[str, bool], recovery: Recovery) -> None:
        """load → lock → recover → situate → decide → settle: every change of `flights` gets its decision."""
        live = await load(state, self.links, mapping.name, source, flights)
        if not live:
            return
        changes = [f.change for f in live]
        create_flags = {}
        for n, f in enumerate(live):
            replay = f.item.event.replay
            create_flags[n] = (not replay.create) if replay is not None else only_coupled.get(mapping.name, True)
        locked = await lock_situations(state, self.links, mapping, source, changes, sync_only_coupled=create_flags)
        # recovered only now, under the locks, and before anything is read for the decisions
        recovered = await recover(state, self.links, self.mapping_file, mapping, source, changes, recovery)
        shapes = self.shapes(mapping.name)
        await situate(state, self.links, mapping, source, live, changes, create_flags, locked, recovered, shapes)
        decide_each(mapping, live, shapes)
        await settle(self.links, self.mapping_file, mapping, source, live, recovery)

    async def _record(self, state: asyncpg.Connection, flights: list[InFlight]) -> None:
        await record(state, self.settings, self.mapping_file, flights)


_POSITION = attrgetter("position")


def _without(flights: list[InFlight], leaving: list[InFlight]) -> list[InFlight]:
    if not leaving:
        return flights
    gone = set(leaving)
    return [f for f in flights if f not in gone]


def _second_claims(flights: list[InFlight], source: System) -> list[InFlight]:
    """Changes that would couple a partner another change of the same group already claims: they are decided
    again once the first claim is recorded (then that partner is taken, and they match or create otherwise)."""
    claimed: set[str] = set()
    again: list[InFlight] = []
    for f in flights:
        decision = f.decision
        if decision.verdict not in ("coupled", "created") or decision.coupling is None:
            continue
        partner = Pair(decision.coupling.erp_key, decision.coupling.crm_key).other(source)
        if partner in claimed:
            again.append(f)
        claimed.add(partner)
    return again
