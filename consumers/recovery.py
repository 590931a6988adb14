"""Recovering writes a crash interrupted: in the ERP or the CRM, but not in the state (docs/exactly-once.md).

The worker announces each decision with writes (`cdc.state.intents`) before applying it, with the coupling it
will record. When the state transaction that records the coupling never commits, the next decision about either
record finds the intent and, when the write did happen, restores the coupling exactly as the crashed attempt
would have recorded it; the decision then proceeds as if nothing had happened — a later change on either side
syncs (also a change back to the old value), a delete follows its policy, a creation is counted once.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import structlog

from cdc.mapping.model import MappingFile, TableMapping
from cdc.pair import System, other
from cdc.state import couplings as coupling_store
from cdc.state import intents, update_intents
from cdc.state.couplings import Coupling
from cdc.state.intents import Intent
from cdc.values import canonical
from consumers.decisions.record import Change
from consumers.locks import lock_id, lock_keys, lock_records
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
    mine = [intent.keys[source] for intent in restored.values()]
    log.warning("restored couplings of creations interrupted by a crash", mapping=mapping.name, system=source,
                keys=mine[:10], count=len(mine))
    return Recovered(await coupling_store.fetch_by_keys(state, mapping.name, source, mine), reusable, rematch)


def _coupling(intent: Intent) -> Coupling:
    result = {f"last_result_to_{other(intent.source)}": "success"}
    return Coupling(mapping=intent.mapping, erp_key=intent.erp_key, crm_key=intent.crm_key,
                    erp_values=intent.erp_values, crm_values=intent.crm_values,
                    erp_modified_on=intent.erp_modified_on, crm_modified_on=intent.crm_modified_on,
                    erp_position=intent.erp_position, crm_position=intent.crm_position,
                    **result)  # type: ignore[arg-type]


async def recover_updates(state: asyncpg.Connection, links: dict[System, SystemLink],
                          mapping_file: MappingFile) -> int:
    """Once a batch holds its records' locks, before it decides: the update intents of batches that died between
    their writes and their commit (`cdc.state.update_intents`), oldest first, restored field by field where the
    systems still hold what was written; then settled. Returns how many couplings were restored."""
    if not await update_intents.any_announced(state):
        return 0
    rows = await update_intents.dangling(state)
    if not rows:
        return 0
    known = {m.name for m in mapping_file.mappings}
    by_mapping: dict[str, list[update_intents.UpdateIntent]] = defaultdict(list)
    for row in rows:
        if row.mapping in known:
            by_mapping[row.mapping].extend(row.entries)
    restored_count = 0
    for name, entries in by_mapping.items():
        mapping = mapping_file.get(name)
        await lock_records(state, {lock_id(name, "erp", e.erp_key) for e in entries})
        current: dict[System, dict[str, dict]] = {}
        for system in ("erp", "crm"):
            keys = sorted({e.key(system) for e in entries if system in e.writes})
            current[system] = await links[system].rows_by_key(mapping.side(system).table, keys) if keys else {}
        restored = restorations(mapping, entries, current)
        await update_intents.restore_fingerprints(state, name, restored)
        restored_count += len(restored)
        if restored:
            log.warning("restored fingerprints of writes interrupted by a crash", mapping=name,
                        pairs=[(r.erp_key, r.crm_key) for r in restored][:10], count=len(restored))
    await update_intents.settle(state, [row.id for row in rows])
    return restored_count


def restorations(mapping: TableMapping, entries: list[update_intents.UpdateIntent],
                 current: dict[System, dict[str, dict]]) -> list[update_intents.Restored]:
    """Per coupled pair, the fingerprints the interrupted batches would have recorded: `entries` oldest first, each
    written field restored when its system still holds the value written (else a user changed it since, and that
    change's event decides), later entries over earlier ones."""
    pairs: dict[tuple[str, str], dict[str, Any]] = {}
    for entry in entries:
        restored_here = False
        for system, values in entry.writes.items():
            row = current.get(system, {}).get(entry.key(system))  # type: ignore[arg-type]
            if row is None:
                continue
            for column, value in values.items():
                if canonical(row.get(column)) != value:
                    continue
                pair = pairs.setdefault((entry.erp_key, entry.crm_key), {"erp": {}, "crm": {}})
                for f in mapping.fields_writing(system).get(column, ()):  # type: ignore[arg-type]
                    for side, printed in (("erp", entry.erp_values), ("crm", entry.crm_values)):
                        pair[side].update({c: printed[c] for c in f.columns(side) if c in printed})  # type: ignore[arg-type]
                restored_here = True
        if restored_here:
            pair = pairs[(entry.erp_key, entry.crm_key)]
            for name in ("erp_modified_on", "crm_modified_on", "erp_position", "crm_position"):
                if getattr(entry, name) is not None:
                    pair[name] = getattr(entry, name)
    return [update_intents.Restored(erp, crm, p["erp"], p["crm"], p.get("erp_modified_on"),
                                    p.get("crm_modified_on"), p.get("erp_position"), p.get("crm_position"))
            for (erp, crm), p in pairs.items()]


def _was_written(intent: Intent, rows: dict[System, dict[str, dict]]) -> bool:
    """Whether the systems hold what the intent wrote (else it never was, or a user changed it since: the stored
    coupling then stays, and that change's event decides)."""
    for system, values in (intent.writes or {}).items():
        row = rows[system].get(intent.keys[system])  # type: ignore[index]
        if row is None or any(canonical(row.get(column)) != value for column, value in values.items()):
            return False
    return True
