"""The dry run of a full sync: what each mapping and direction would create, couple by match, update, leave
unchanged, skip and fail — and which creations are likely duplicates — computed without writing anything.

It walks the plan like the real run (dependency order; per mapping the ERP side, then the CRM side) and decides
each in-filter record with the worker's own code: `consumers.situation.load_situations` (couplings, partner rows,
lookups, match candidates) and the pure `consumers.decisions.record.decide`. What earlier steps would have done is kept
in an overlay — couplings made, fields written — so a customer created in step one resolves its contacts' lookup
later, and a pair matched while replaying the ERP side, whose CRM record got the ERP's values, is found in sync
from the CRM side instead of "updated". Each decision is counted as the run's job counts it (its counters: a
record coupled by match is also updated or unchanged), so a dry run's counts are the run's, mapping by mapping.

Likely duplicates: records that would be created on the other side although a near match exists there (same
match field ignoring case, whitespace and punctuation; same e-mail ignoring case, or one character apart), among
the other side's in-filter records not coupled yet. Each near pair is listed once.

Each prediction names the mapping's `after_match` (whose values the records it couples by match keep). A creation
on a side numbered by its own series is predicted without taking a number from it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from cdc import table_gateway
from cdc.mapping.model import MappingFile, TableMapping
from cdc.orchestrator.duplicates import LikelyDuplicate, NearIndex
from cdc.orchestrator.links import ReadOnly, read_only
from cdc.orchestrator.plan import Step, select, steps_of
from cdc.orchestrator.progress import plain
from cdc.orchestrator.sources import CHUNK, SideRows
from cdc.pair import Pair, System, other
from cdc.settings import Settings
from cdc.values import INTEGER_TYPES, CoercionError, key_text
from consumers import (
    Change,
    CouplingChange,
    Decision,
    LookupKey,
    Shapes,
    Situation,
    candidate_keys,
    decide,
    load_situations,
    lookup_needs,
    replay_failure,
    typed_row,
)
from schemas.key_text import encode as encode_key

CATEGORIES = ("created", "coupled", "updated", "unchanged", "skipped", "failed")
FAILURES_KEPT = 50
NEAR_PER_RECORD = 3

_CATEGORY = {"inserted": "created", "coupled": "coupled", "modified": "updated", "unchanged": "unchanged",
             "skipped": "skipped", "failed": "failed", "uncoupled": "skipped", "deleted": "skipped"}
"""The category of each job counter (replays never delete; a partner gone with deletion policy uncouple is rare)."""


AFTER_MATCH = {"source": "{source} values prevail (the side replayed)", "erp": "erp values prevail",
               "crm": "crm values prevail", "newest": "the newest record's values prevail",
               "none": "coupled only, nothing written"}


def after_match(mapping: TableMapping, source: System) -> str:
    """What a coupling by match does to the values, as the dry run says it."""
    return AFTER_MATCH[mapping.after_match].format(source=source)


@dataclass
class Prediction:
    mapping: str
    direction: str
    after_match: str = ""
    """Whose values the records coupled by match keep (empty: the mapping has no match fields)."""
    created: int = 0
    coupled: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    failed: int = 0
    failures: list[dict[str, str]] = field(default_factory=list)
    duplicates: list[LikelyDuplicate] = field(default_factory=list)

    def count(self, category: str, n: int = 1) -> None:
        setattr(self, category, getattr(self, category) + n)

    def counts(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in CATEGORIES}


@dataclass
class DryRunReport:
    predictions: list[Prediction]
    cancelled: bool = False

    @property
    def duplicates(self) -> list[LikelyDuplicate]:
        return [d for p in self.predictions for d in p.duplicates]

    def as_json(self) -> dict[str, Any]:
        return {"dry_run": True, "cancelled": self.cancelled,
                "predictions": [{"mapping": p.mapping, "direction": p.direction, **p.counts(),
                                 "after_match": p.after_match, "likely_duplicates": len(p.duplicates),
                                 "failures": p.failures}
                                for p in self.predictions],
                "likely_duplicates": plain(self.duplicates)}


@dataclass(frozen=True)
class VirtualCoupling:
    """A coupling as the run would leave it (satisfies consumers.decisions.record.CouplingLike)."""

    erp_key: str
    crm_key: str
    erp_values: dict[str, Any] | None
    crm_values: dict[str, Any] | None
    erp_position: int | None = None
    crm_position: int | None = None
    skipped: bool = False

    def key(self, system: System) -> str:
        return Pair(self.erp_key, self.crm_key)[system]

    @classmethod
    def of(cls, change: CouplingChange) -> VirtualCoupling:
        return cls(change.erp_key, change.crm_key, dict(change.erp_values), dict(change.crm_values),
                   change.erp_position, change.crm_position)


class Overlay:
    """What the steps decided so far would have changed.

    `pairs` holds every coupling the run would make (by mapping and side: key -> partner key), enough for
    lookups and for taken keys; `couplings` holds the full coupling (fingerprints) only where both records exist
    already — a record created by the run is not read by a later step, so its fingerprints are not kept and
    memory stays small. `rows` holds field values the run would write into existing records.
    """

    def __init__(self) -> None:
        self.pairs: dict[tuple[str, System], dict[str, str]] = defaultdict(dict)
        self.couplings: dict[tuple[str, System, str], VirtualCoupling] = {}
        self.removed: set[tuple[str, System, str]] = set()
        self.rows: dict[tuple[System, str, str], dict[str, Any]] = defaultdict(dict)
        self.created_into: dict[tuple[str, System], int] = defaultdict(int)

    def coupling(self, mapping: str, system: System, key: str) -> VirtualCoupling | None:
        return self.couplings.get((mapping, system, key))

    def is_removed(self, mapping: str, system: System, key: str) -> bool:
        return (mapping, system, key) in self.removed

    def couple(self, mapping: str, coupling: VirtualCoupling, *, created: bool) -> None:
        for system in ("erp", "crm"):
            key = coupling.key(system)  # type: ignore[arg-type]
            self.pairs[(mapping, system)][key] = coupling.key(other(system))  # type: ignore[index, arg-type]
            self.removed.discard((mapping, system, key))  # type: ignore[arg-type]
            if not created:
                self.couplings[(mapping, system, key)] = coupling  # type: ignore[index]

    def uncouple(self, mapping: str, erp_key: str, crm_key: str) -> None:
        for system, key in (("erp", erp_key), ("crm", crm_key)):
            self.couplings.pop((mapping, system, key), None)  # type: ignore[arg-type]
            self.pairs[(mapping, system)].pop(key, None)  # type: ignore[index]
            self.removed.add((mapping, system, key))  # type: ignore[arg-type]

    def partner(self, mapping: str, system: System, key: str) -> str | None:
        return self.pairs.get((mapping, system), {}).get(key)

    def keys(self, mapping: str, system: System) -> dict[str, str]:
        """The keys of `system`'s side the run would couple (a dict: key -> partner key)."""
        return self.pairs.get((mapping, system), {})

    def source_row(self, rows_of: SideRows, row: dict[str, Any]) -> dict[str, Any]:
        """A row a step replays, with the values earlier steps would have written into it."""
        written = self.rows.get((rows_of.system, rows_of.side.table, rows_of.key_of(row)))
        return {**row, **written} if written else row

    def patched(self, system: System, table: str, key: str, row: dict[str, Any] | None) -> dict[str, Any] | None:
        written = self.rows.get((system, table, key))
        if row is None or not written:
            return row
        return {**row, **written}


async def dry_run(settings: Settings, mapping_file: MappingFile, *, only: str | None = None,
                  stop: asyncio.Event | None = None, create: bool = True, chunk: int = CHUNK) -> DryRunReport:
    """Predict a full sync (all mappings or `only`); writes nothing into the ERP, the CRM or the state."""
    stop = stop or asyncio.Event()
    report = DryRunReport([])
    overlay = Overlay()
    async with read_only(settings, mapping_file) as ro:
        for mapping in select(mapping_file, only):
            reported: set[Pair[str]] = set()
            for step in steps_of(mapping):
                prediction = await _predict(ro, mapping_file, step, overlay, create, chunk, stop, reported)
                report.predictions.append(prediction)
                if stop.is_set():
                    report.cancelled = True
                    return report
    return report


async def _predict(ro: ReadOnly, mapping_file: MappingFile, step: Step, overlay: Overlay, create: bool,
                   chunk: int, stop: asyncio.Event, reported: set[Pair[str]]) -> Prediction:
    mapping, source, destination = step.mapping, step.source, step.destination
    prediction = Prediction(mapping.name, step.direction, after_match(mapping, source) if mapping.match_on else "")
    # records an earlier step created in this side's system are replayed too, and found equal
    prediction.unchanged += overlay.created_into.get((mapping.name, source), 0)
    rows_of = SideRows(mapping, source, ro.table(mapping, source))
    shapes = ro.shapes(mapping)
    created: list[tuple[str, dict[str, Any]]] = []
    match_columns = [m.column(source) for m in mapping.match_on]
    async with ro.links[source].reader.acquire() as conn:
        hierarchy = bool(rows_of.parent_columns)  # parents first, as the run replays them
        async with rows_of.snapshot(conn, None, chunk, by_depth=hierarchy) as (_, chunks):
            async for chunk_rows in chunks:
                for rows in _levels(chunk_rows) if hierarchy else [chunk_rows]:
                    rows = [overlay.source_row(rows_of, row) for row in rows]  # with what earlier steps wrote
                    changes = changes_of(rows_of, rows, prediction)
                    situations = await load_situations(ro.state, ro.links, mapping, source, changes,
                                                       sync_only_coupled={i: not create for i in range(len(changes))})
                    situations = await _overlaid(ro, mapping, source, changes, situations, overlay, shapes)
                    for change, situation in zip(changes, situations, strict=True):
                        decision = _decide(mapping_file, mapping, change, situation, shapes)
                        for counter, n in decision.counts.items():  # as the run's job counts it
                            prediction.count(_CATEGORY[counter], n)
                        if decision.counts.get("failed"):
                            _keep_failure(prediction, change.key, decision.error or decision.reason)
                        if decision.verdict == "created":
                            overlay.created_into[(mapping.name, destination)] += 1
                            created.append((change.key, {c: change.row.get(c) for c in match_columns}))
                        _remember(overlay, mapping, decision, destination, source, change.key, ro)
                if stop.is_set():
                    break
    if created and mapping.match_on and not stop.is_set():
        prediction.duplicates = await _likely_duplicates(ro, mapping, step, created, overlay, reported)
    return prediction


def _keep_failure(prediction: Prediction, key: str, error: str) -> None:
    if len(prediction.failures) < FAILURES_KEPT:
        prediction.failures.append({"key": key, "error": error})


def changes_of(rows_of: SideRows, rows: list[dict[str, Any]], prediction: Prediction) -> list[Change]:
    """The rows as the changes a replay makes of them; a row holding a value the sync cannot type is counted as
    a predicted failure, as the sync makes it a dead letter and a job error (`consumers.incoming`)."""
    changes = []
    for row in rows:
        try:
            changes.append(_change(rows_of, row))
        except CoercionError as exc:
            key = rows_of.key_of(row)
            prediction.count("failed")
            _keep_failure(prediction, key, f"{rows_of.system}.{rows_of.table.name} {key}: {exc}")
    return changes


def _levels(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """A hierarchy's rows (ordered by depth) level by level, as the run replays them: a level's parents are
    decided, and in the overlay, before their children look them up."""
    levels: dict[Any, list[dict[str, Any]]] = {}
    for row in rows:
        levels.setdefault(row.pop(table_gateway.DEPTH), []).append(row)
    return list(levels.values())


def _change(rows_of: SideRows, row: dict[str, Any]) -> Change:
    typed = typed_row(row, rows_of.table, list(row))
    return Change(rows_of.system, "r", rows_of.key_of(row), typed,
                  modified_on=row.get(rows_of.side.modified_on), replay=True)


def _decide(mapping_file: MappingFile, mapping: TableMapping, change: Change, situation: Situation,
            shapes: Shapes) -> Decision:
    try:
        decision = decide(mapping, change, situation, shapes)
        if decision.needs_key:  # a number series: no number is taken for a prediction
            placeholder = _placeholder_key(mapping, change, shapes)
            decision = decide(mapping, change, dataclasses.replace(situation, allocated=placeholder), shapes)
    except ValueError as exc:  # a value that cannot be carried (coercion, value map, transform)
        return Decision("failed", str(exc), counts={"failed": 1}, error=str(exc))
    if decision.verdict == "parked":  # as the worker does for replays
        return replay_failure(mapping_file, mapping.name, change, decision)
    return decision


def _placeholder_key(mapping: TableMapping, change: Change, shapes: Shapes) -> str:
    """Values of their columns' types standing in for what the destination's key column defaults would make (one
    per record), as `Situation.allocated` holds them."""
    destination = other(change.source)
    shape = shapes.table(destination)
    seed = f"dry run:{mapping.name}:{change.source}:{change.key}"
    parts = []
    for name in mapping.drawn_key_columns(destination):
        column = shape.columns[name]
        if column.type_name == "uuid":
            parts.append(str(uuid.uuid5(uuid.NAMESPACE_URL, seed)))
        elif column.type_name in INTEGER_TYPES or column.type_name == "numeric":
            parts.append(str(-1 - zlib.crc32(seed.encode()) % 32767))  # negative, and within even a smallint
        else:
            parts.append(f"?{change.key}"[:column.max_length])
    return encode_key(parts)


def _own_keys(mapping: TableMapping, change: Change, destination: System, shapes: Shapes) -> list[str]:
    """The keys a record created from `change` could take (deterministic, see consumers.decisions.keys)."""
    return candidate_keys(mapping, mapping.side(destination), shapes.key_type(destination),
                          shapes.key_length(destination), change.key, change.row)


async def _overlaid(ro: ReadOnly, mapping: TableMapping, source: System, changes: list[Change],
                    situations: list[Situation], overlay: Overlay, shapes: Shapes) -> list[Situation]:
    """The situations as they would be after the earlier steps of the run."""
    destination = other(source)
    dest_table = mapping.side(destination).table
    virtual = {i: overlay.coupling(mapping.name, source, c.key) for i, c in enumerate(changes)}
    wanted = sorted({vc.key(destination) for vc in virtual.values() if vc is not None})
    partners = await ro.links[destination].rows_by_key(dest_table, wanted) if wanted else {}
    taken = overlay.keys(mapping.name, destination)
    out = []
    for i, (change, situation) in enumerate(zip(changes, situations, strict=True)):
        vc = virtual[i]
        if vc is not None:
            partner_key = vc.key(destination)
            situation = dataclasses.replace(
                situation, coupling=vc, candidates=(),
                partner=overlay.patched(destination, dest_table, partner_key, partners.get(partner_key)))
        elif situation.coupling is not None and overlay.is_removed(mapping.name, source, change.key):
            situation = dataclasses.replace(situation, coupling=None, partner=None)
        elif situation.coupling is not None:
            partner_key = Pair(situation.coupling.erp_key, situation.coupling.crm_key)[destination]
            situation = dataclasses.replace(
                situation, partner=overlay.patched(destination, dest_table, partner_key, situation.partner))
        else:
            key_columns = mapping.side(destination).key_columns
            groups = tuple(tuple(row for row in group if key_text(row, key_columns) not in taken)
                           for group in situation.candidates)
            mine = [k for k in _own_keys(mapping, change, destination, shapes) if k in taken]
            situation = dataclasses.replace(situation, candidates=groups,
                                            taken_keys=situation.taken_keys | frozenset(mine))
        extra = _virtual_lookups(mapping, source, change.row, situation, overlay)
        if situation.partner is not None:
            extra.update(_virtual_lookups(mapping, destination, situation.partner, situation, overlay))
        for group in situation.candidates:  # a match carries the candidate's values too (after_match)
            for row in group:
                extra.update(_virtual_lookups(mapping, destination, row, situation, overlay))
        if extra:
            situation = dataclasses.replace(situation, lookups={**situation.lookups, **extra})
        out.append(situation)
    return out


def _virtual_lookups(mapping: TableMapping, system: System, row: dict[str, Any], situation: Situation,
                     overlay: Overlay) -> dict[LookupKey, str]:
    extra: dict[LookupKey, str] = {}
    for need in lookup_needs(mapping, system, row):
        if need not in situation.lookups:
            partner = overlay.partner(*need)
            if partner is not None:
                extra[need] = partner
    return extra


def _remember(overlay: Overlay, mapping: TableMapping, decision: Decision, destination: System, source: System,
              key: str, ro: ReadOnly) -> None:
    change = decision.coupling
    if change is not None:
        if change.remove:
            overlay.uncouple(mapping.name, change.erp_key, change.crm_key)
        elif not change.failure:
            overlay.couple(mapping.name, VirtualCoupling.of(change),
                           created=decision.verdict in ("created", "restored"))
    for write in decision.writes:
        if write.kind == "update":
            overlay.rows[(write.system, mapping.side(write.system).table, write.key)].update(write.values)


async def _likely_duplicates(ro: ReadOnly, mapping: TableMapping, step: Step,
                             created: list[tuple[str, dict[str, Any]]], overlay: Overlay,
                             reported: set[Pair[str]]) -> list[LikelyDuplicate]:
    source, destination = step.source, step.destination
    dest_rows = SideRows(mapping, destination, ro.table(mapping, destination))
    fields = [(m.column(source), m.column(destination)) for m in mapping.match_on]
    columns = list(dict.fromkeys([*dest_rows.key_columns, *(d for _, d in fields)]))
    sql, params = dest_rows.select(columns)
    coupled_column = f"{destination}_key"
    taken = {row[0] for row in await ro.state.fetch(
        f"SELECT {coupled_column} FROM cdc.couplings WHERE mapping = $1", mapping.name)}
    taken |= set(overlay.keys(mapping.name, destination))
    index = NearIndex(fields)
    async with ro.links[destination].reader.acquire() as conn:
        for row in await conn.fetch(sql, *params):
            key = dest_rows.key_of(row)
            if key not in taken:
                index.add(key, dict(row))
    found: list[LikelyDuplicate] = []
    for key, values in created:
        for near in index.near(values)[:NEAR_PER_RECORD]:
            pair = Pair.oriented(source, key, near.key)
            if pair in reported:
                continue
            reported.add(pair)
            source_column = next(s for s, d in fields if d == near.column)
            found.append(LikelyDuplicate(mapping.name, source, key, source_column, values.get(source_column),
                                         near.key, near.column, near.value, near.reason))
    return found
