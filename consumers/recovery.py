"""Recovering writes a crash interrupted: in the ERP or the CRM, but not in the state (docs/exactly-once.md).

The worker announces each decision with writes (`cdc.state.intents`) before applying it, with the coupling it
will record. When the state transaction that records the coupling never commits, the next decision about either
record finds the intent and, when the write did happen, restores the coupling exactly as the crashed attempt
would have recorded it; the decision then proceeds as if nothing had happened — a later change on either side
syncs (also a change back to the old value), a delete follows its policy, a creation is counted once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg
import structlog

from cdc.mapping.model import TableMapping, other
from cdc.settings import System
from cdc.state import couplings as coupling_store
from cdc.state import intents
from cdc.state.couplings import Coupling
from cdc.state.intents import Intent
from consumers.decisions.record import Change
from consumers.decisions.values import canonical
from consumers.locks import lock_keys
from consumers.systems import SystemLink

log = structlog.get_logger()

RecordId = tuple[str, System, str]


@dataclass
class Recovery:
    """What recovery did during one batch: intents to forget when the batch commits (not before: announcing the
    same record again in the batch would wait on the deleted row), and the restored creations to count."""

    possible: bool = True
    """False when no intent existed as the batch began: none can be dangling for its records."""
    forget: set[RecordId] = field(default_factory=set)
    restored: list[Intent] = field(default_factory=list)
    _restored_sources: set[RecordId] = field(default_factory=set)
    seen: set[tuple[str, System, str, str]] = field(default_factory=set)
    """Intents (mapping, system, key, kind) this batch announced itself, or already recovered from."""

    def dangling(self, intent: Intent) -> bool:
        """Left behind by a crash, and not handled yet in this batch."""
        return (intent.mapping, intent.source, intent.source_key, intent.kind) not in self.seen

    def handled(self, intent: Intent) -> None:
        self.seen.add((intent.mapping, intent.source, intent.source_key, intent.kind))
        self.forget.add((intent.mapping, intent.source, intent.source_key))

    def restored_source(self, mapping: str, system: System, key: str) -> bool:
        """Whether this batch restored a coupling announced by this record."""
        return (mapping, system, key) in self._restored_sources

    def restore(self, intent: Intent) -> None:
        self.handled(intent)
        self.restored.append(intent)
        self._restored_sources.add((intent.mapping, intent.source, intent.source_key))


@dataclass(frozen=True)
class Recovered:
    couplings: dict[str, Coupling]
    """Restored couplings, by the key of the records being decided."""
    reusable: dict[str, str]
    """Creations announced but never written (no destination record): source key -> the announced key, which the
    creation reuses."""
    rematch: dict[str, str] = field(default_factory=dict)
    """Matches announced but not (fully) written: source key -> the announced partner, which stays a match
    candidate for that record (and only for it) while it is decided again."""


async def recover_interrupted(state: asyncpg.Connection, links: dict[System, SystemLink], mapping: TableMapping,
                              source: System, uncoupled: list[Change], recovery: Recovery) -> Recovered:
    """For uncoupled `source` records: restore the coupling of a creation they announced (when it was written),
    or of the creation they are (when they were created by the sync)."""
    if not uncoupled or not recovery.possible:
        return Recovered({}, {})
    destination = other(source)
    keys = [c.key for c in uncoupled]
    announced = {k: i for k, i in (await intents.couplings_by_source(state, mapping.name, source, keys)).items()
                 if recovery.dangling(i)}
    created_here = {k: i for k, i in (await intents.couplings_by_destination(state, mapping.name, source,
                                                                           keys)).items()
                    if recovery.dangling(i)}
    if not announced and not created_here:
        return Recovered({}, {})
    await lock_keys(state, mapping.name, destination, [i.destination_key for i in announced.values()]
                    + [i.source_key for i in created_here.values()])
    chosen: list[Intent] = []
    reusable: dict[str, str] = {}
    rematch: dict[str, str] = {}
    own_rows = {c.key: c.row for c in uncoupled}
    if announced:
        dest_keys = sorted({i.destination_key for i in announced.values()})
        written = await links[destination].rows_by_key(mapping.side(destination).table, dest_keys)
        busy = await coupling_store.partners_by_keys(state, mapping.name, destination, dest_keys)
        for key, intent in announced.items():
            if intent.destination_key in busy:
                continue
            if intent.kind == "match" and not _was_written(intent, {destination: written, source: own_rows}):
                # the partner existed before: only its values tell whether the crashed match wrote anything
                recovery.handled(intent)
                rematch[key] = intent.destination_key
            elif intent.destination_key in written:
                chosen.append(intent)
            else:
                reusable[key] = intent.destination_key
    if created_here:
        origins = sorted({i.source_key for i in created_here.values()})
        busy = await coupling_store.partners_by_keys(state, mapping.name, destination, origins)
        matched = sorted({i.source_key for i in created_here.values() if i.kind == "match"})
        rows = {source: own_rows,
                destination: await links[destination].rows_by_key(mapping.side(destination).table, matched)
                if matched else {}}
        for intent in created_here.values():
            if intent.source_key in busy:
                continue
            if intent.kind == "match" and not _was_written(intent, rows):
                recovery.handled(intent)  # not done: this record is decided afresh, and the intent forgotten
                continue
            chosen.append(intent)
    restored: dict[tuple[str, str], Intent] = {}
    erp_taken: set[str] = set()
    crm_taken: set[str] = set()
    for intent in chosen:
        if intent.erp_key in erp_taken or intent.crm_key in crm_taken:
            continue
        erp_taken.add(intent.erp_key)
        crm_taken.add(intent.crm_key)
        restored[(intent.erp_key, intent.crm_key)] = intent
    if not restored:
        return Recovered({}, reusable, rematch)
    await coupling_store.upsert_many(state, [_coupling(i) for i in restored.values()])
    for intent in restored.values():
        recovery.restore(intent)
    mine = [erp if source == "erp" else crm for erp, crm in restored]
    log.warning("restored couplings of creations interrupted by a crash", mapping=mapping.name, system=source,
                keys=mine[:10], count=len(mine))
    return Recovered(await coupling_store.fetch_by_keys(state, mapping.name, source, mine), reusable, rematch)


def _coupling(intent: Intent) -> Coupling:
    result = {"last_result_to_crm": "success"} if intent.source == "erp" else {"last_result_to_erp": "success"}
    return Coupling(mapping=intent.mapping, erp_key=intent.erp_key, crm_key=intent.crm_key,
                    erp_values=intent.erp_values, crm_values=intent.crm_values,
                    erp_modified_on=intent.erp_modified_on, crm_modified_on=intent.crm_modified_on,
                    erp_position=intent.erp_position, crm_position=intent.crm_position,
                    **result)  # type: ignore[arg-type]


async def recover_writes(state: asyncpg.Connection, links: dict[System, SystemLink], mapping: TableMapping,
                         source: System, coupled: dict[str, Coupling], recovery: Recovery) -> dict[str, Coupling]:
    """For coupled `source` records (by key): when a crashed batch wrote to the pair, record
    what it would have recorded, so the write is not taken for a user's change whose event never comes (the
    sync's own writes are not captured). Returns the couplings as restored, by the same keys."""
    if not coupled or not recovery.possible:
        return {}
    pairs = {(c.erp_key, c.crm_key): key for key, c in coupled.items()}
    found = [i for i in await intents.updates_of_pairs(state, mapping.name, list(pairs)) if recovery.dangling(i)]
    if not found:
        return {}
    for intent in found:
        recovery.handled(intent)
    current = [i for i in found if (i.erp_key, i.crm_key) in pairs]
    rows: dict[System, dict[str, dict]] = {}
    for system in ("erp", "crm"):
        keys = sorted({i.erp_key if system == "erp" else i.crm_key for i in current if system in (i.writes or {})})
        rows[system] = await links[system].rows_by_key(mapping.side(system).table, keys) if keys else {}
    written = [i for i in current if _was_written(i, rows)]
    if not written:
        return {}
    await intents.restore_fingerprints(state, written)
    log.warning("restored fingerprints of writes interrupted by a crash", mapping=mapping.name,
                pairs=[(i.erp_key, i.crm_key) for i in written][:10], count=len(written))
    return await coupling_store.fetch_by_keys(state, mapping.name, source,
                                              [pairs[(i.erp_key, i.crm_key)] for i in written])


def _was_written(intent: Intent, rows: dict[System, dict[str, dict]]) -> bool:
    """Whether the systems hold what the intent wrote (else it never was, or a user changed it since: the stored
    coupling then stays, and that change's event decides)."""
    for system, values in (intent.writes or {}).items():
        row = rows[system].get(intent.erp_key if system == "erp" else intent.crm_key)  # type: ignore[index]
        if row is None or any(canonical(row.get(column)) != value for column, value in values.items()):
            return False
    return True
