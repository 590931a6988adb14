"""The decision for one change of one record under one mapping.

Given the change (typed source row), what the state store and the destination hold (coupling, partner row, match
candidates, resolved lookups) and the mapping, say what happens — following the reference's rules:
direction and filters first, then coupling (skip, match, create), then field-by-field sync with conflict
detection, and the deletion policy for deletes. Pure: every input is passed in, nothing is read or written here.

What the mapping language adds on top (docs/mappings.md): a lookup that is not coupled waits, fails or clears its
field (`on_lookup_failure`); after a match the side `after_match` names prevails on the fields both sides carry;
a normalised field is written normalised to the other side and back to its own; a creation on a `series` side,
or on a `columns` side with key columns only their defaults fill, takes the key (columns) allocated for it
(`Situation.allocated`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from cdc.mapping import transforms
from cdc.mapping.filters import matches
from cdc.mapping.model import TableMapping
from cdc.pair import Pair, System, other
from cdc.values import canonical, coerce, key_text
from consumers.decisions import conflicts as conflict_words
from consumers.decisions.fields import LookupKey, LookupNeeded, Unresolved, carry, snapshot, target_values
from consumers.decisions.keys import candidate_keys, columns_key
from consumers.decisions.outcome import CouplingChange, Decision, Write
from consumers.decisions.plan import FieldPlan, Route, TableShape, field_plan
from schemas.key_text import decode as decode_key

Op = Literal["c", "u", "d", "r"]


class CouplingLike(Protocol):
    erp_key: str
    crm_key: str
    erp_values: dict[str, Any] | None
    crm_values: dict[str, Any] | None
    erp_position: int | None
    crm_position: int | None
    skipped: bool


@dataclass(frozen=True)
class Change:
    source: System
    op: Op
    key: str
    row: dict[str, Any]
    position: int = 0
    modified_on: datetime | None = None
    replay: bool = False


@dataclass(frozen=True)
class Situation:
    coupling: CouplingLike | None = None
    partner: dict[str, Any] | None = None
    candidates: tuple[tuple[dict[str, Any], ...], ...] = ()
    lookups: Mapping[LookupKey, str] = field(default_factory=dict)
    sync_only_coupled: bool = True
    taken_keys: frozenset[str] = frozenset()
    retry: bool = False
    intent: str | None = None  # the destination key an interrupted creation of this record announced
    keep: System | None = None  # an operator's resolution of a conflict: this side's values win (cdc resolve)
    # what the destination's key column defaults made for this record's creation, before it: the key of a `series`
    # side; under `columns`, the key text (schemas/key_text) of the drawn key columns (`drawn_key_columns`)
    allocated: str | None = None
    allocation_failed: str | None = None  # why no key could be allocated from those defaults


@dataclass(frozen=True)
class Shapes:
    erp: TableShape
    crm: TableShape
    erp_key_type: str = "varchar"
    crm_key_type: str = "uuid"
    erp_key_length: int | None = None
    crm_key_length: int | None = None

    def table(self, system: System) -> TableShape:
        return Pair(self.erp, self.crm)[system]

    def key_type(self, system: System) -> str:
        return Pair(self.erp_key_type, self.crm_key_type)[system]

    def key_length(self, system: System) -> int | None:
        return Pair(self.erp_key_length, self.crm_key_length)[system]


def decide(mapping: TableMapping, change: Change, situation: Situation, shapes: Shapes) -> Decision:
    if change.op == "d":
        return _deleted(mapping, change, situation, shapes)
    source = change.source
    if not mapping.allows(source):
        return Decision("ignored", f"{mapping.name} does not sync from {source}")
    if not matches(mapping.side(source).filter, change.row):
        return Decision("ignored", "outside the mapping's filter")
    coupling = situation.coupling
    if coupling is not None and coupling.skipped and not situation.retry:
        # a change that finds the pair in sync (both sides made to agree) goes through: it settles the record
        decision = _decide_change(mapping, change, situation, shapes)
        if decision.verdict == "unchanged":
            return decision
        return Decision("skipped", "coupling is skipped after repeated failures: cdc retry clears it",
                        counts={"skipped": 1}, partner_key=_key(coupling, other(source)))
    return _decide_change(mapping, change, situation, shapes)


def _decide_change(mapping: TableMapping, change: Change, situation: Situation, shapes: Shapes) -> Decision:
    source = change.source
    coupling = situation.coupling
    if coupling is not None and change.position and change.position < (_position(coupling, source) or 0):
        return Decision("unchanged", "older than the change already synced", counts={"unchanged": 1},
                        partner_key=_key(coupling, other(source)))
    if coupling is None and situation.sync_only_coupled:
        return Decision("skipped", "not coupled, and the mapping syncs only coupled records", counts={"skipped": 1})
    target, missing = target_values(mapping, source, change.row, shapes.table(other(source)), situation.lookups)
    unresolved = _unresolved(mapping, change, situation, missing)
    if unresolved is not None:
        return unresolved
    cleared = frozenset(c for m in missing for c in m.columns)
    if coupling is None:
        return _uncoupled(mapping, change, situation, shapes, target, cleared)
    if situation.partner is None:
        return _partner_missing(mapping, change, situation, shapes, target, coupling, cleared)
    return _coupled(mapping, change, situation, target, coupling, shapes, cleared)


def _unresolved(mapping: TableMapping, change: Change, situation: Situation,
                missing: list[LookupNeeded]) -> Decision | None:
    """What lookups that are not coupled do, field by field (`on_lookup_failure`): a field that fails fails the
    record, one that waits parks it, and when every one clears, the record syncs with those fields cleared
    (None)."""
    failing = [m for m in missing if m.policy == "fail"]
    if failing:
        message = "; ".join(f"{m} (on_lookup_failure: fail)" for m in failing)
        if situation.coupling is not None:
            return _failure(mapping, change, situation.coupling, message)
        return Decision("failed", message, counts={"failed": 1}, error=message)
    waiting = [m for m in missing if m.policy == "wait"]
    return _waiting(waiting) if waiting else None


def _uncoupled(mapping: TableMapping, change: Change, situation: Situation, shapes: Shapes,
               target: dict[str, Any], cleared: frozenset[str] = frozenset()) -> Decision:
    destination = other(change.source)
    for group in situation.candidates:
        if len(group) > 1:
            dest_key = mapping.side(destination).key_columns
            keys = ", ".join(sorted(key_text(row, dest_key) for row in group)[:5])
            return Decision("failed", f"{len(group)} {destination} records match on "
                            f"{_match_label(mapping, group)}: {keys} — couple one by hand (cdc couple)",
                            counts={"failed": 1}, error="ambiguous match")
        if len(group) == 1:
            return _matched(mapping, change, situation, shapes, target, cleared, group[0])
    return _create(mapping, change, situation, shapes, target, cleared=cleared)


def _matched(mapping: TableMapping, change: Change, situation: Situation, shapes: Shapes, target: dict[str, Any],
             cleared: frozenset[str], partner: dict[str, Any]) -> Decision:
    """Coupled to an existing record by match; the values then follow `after_match`: the side that prevails
    writes the fields both sides carry, one-way fields flow their way — or, with `none`, nothing is written and
    each side's values are taken as they are (the next change of a field syncs it)."""
    destination = other(change.source)
    partner_key = key_text(partner, mapping.side(destination).key_columns)
    matched = _Keys.new(mapping, change, partner_key)
    if mapping.after_match == "none":
        as_they_are = matched.change(source_values=snapshot(change.row, mapping.mapped_columns(change.source)),
                                     destination_values=snapshot(partner, mapping.mapped_columns(destination)),
                                     change=change)
        return Decision("coupled", "coupled by match; nothing written (after_match: none)", counts={"coupled": 1},
                        coupling=as_they_are, partner_key=partner_key)
    prevails = _prevailing(mapping, change, partner)
    decision = _sync_fields(mapping, change, situation, target, matched, partner, shapes, cleared,
                            prevails=prevails)
    counts = dict(decision.counts)
    counts["coupled"] = 1
    writes, coupling = decision.writes, decision.coupling
    back = _written_back(mapping, change, snapshot(partner, list(partner)), situation, shapes)
    if back and coupling is not None:
        # one update of the source record: what prevailed from the partner, and what flows only from it
        mine = [w for w in writes if w.system == change.source]
        writes = (*(w for w in writes if w.system != change.source),
                  Write(change.source, "update", change.key, {**back, **(mine[0].values if mine else {})}))
        source_print = Pair(coupling.erp_values, coupling.crm_values)[change.source]
        source_print.update(back)
    return Decision("coupled", f"coupled by match, {prevails} values prevail; {decision.reason}", counts=counts,
                    writes=writes, coupling=coupling, partner_key=partner_key, error=decision.error)


def _undrawn(situation: Situation, reason: str) -> Decision:
    """A creation whose key columns' defaults have not been drawn yet (`consumers.series`), or could not be."""
    if situation.allocation_failed:
        return Decision("failed", situation.allocation_failed, counts={"failed": 1}, error=situation.allocation_failed)
    return Decision("created", reason, needs_key=True)


def _prevailing(mapping: TableMapping, change: Change, partner: Mapping[str, Any]) -> System:
    """The side whose values prevail after a match (`after_match`; newest: by modified-on, a tie to the source)."""
    policy = mapping.after_match
    if policy in ("erp", "crm"):
        return policy  # type: ignore[return-value]
    if policy == "newest":
        return _newer(mapping, change, partner)
    return change.source


def _create(mapping: TableMapping, change: Change, situation: Situation, shapes: Shapes,
            target: dict[str, Any], *, reuse_key: str | None = None,
            cleared: frozenset[str] = frozenset()) -> Decision:
    source, destination = change.source, other(change.source)
    side = mapping.side(destination)
    if reuse_key is not None:
        new_key = reuse_key
    elif side.new_key.strategy == "series":
        options = list(dict.fromkeys(k for k in (situation.intent, situation.allocated) if k is not None))
        if not options:
            return _undrawn(situation, f"a new {destination} record, its key from the number series")
        free = [k for k in options if k not in situation.taken_keys]
        if not free:
            return Decision("failed", f"every key for the new {destination} record is taken: {options}",
                            counts={"failed": 1}, error="key taken")
        new_key = free[0]
    elif side.new_key.strategy == "columns":
        drawn = mapping.drawn_key_columns(destination)
        if drawn and situation.intent is None and situation.allocated is None:
            return _undrawn(situation, f"a new {destination} record, key column(s) {', '.join(drawn)} from their "
                                       "defaults")
        filled = {**side.defaults, **target}
        if drawn and situation.allocated is not None:
            filled.update(zip(drawn, decode_key(situation.allocated, len(drawn)), strict=True))
        chosen = situation.intent or columns_key(side, filled, shapes.table(destination))
        if chosen is None:
            message = (f"no key for the new {destination} record: a key column ({', '.join(side.key_columns)}) "
                       "gets no value from its fields or defaults")
            return Decision("failed", message, counts={"failed": 1}, error=message)
        if chosen in situation.taken_keys:
            return Decision("failed", f"the key of the new {destination} record is taken: {chosen}",
                            counts={"failed": 1}, error="key taken")
        new_key = chosen
    else:
        options = candidate_keys(mapping, side, shapes.key_type(destination), shapes.key_length(destination),
                                 change.key, change.row)
        if situation.intent is not None:  # an interrupted attempt may have written it already: same record
            options = [situation.intent, *(k for k in options if k != situation.intent)]
        free = [k for k in options if k not in situation.taken_keys]
        if not free:
            return Decision("failed", f"every key for the new {destination} record is taken: {options}",
                            counts={"failed": 1}, error="key taken")
        new_key = free[0]
    values = {**side.defaults, **target}
    if not side.composite:
        values[side.key] = new_key  # type: ignore[index]
    pair = _Keys.new(mapping, change, new_key)
    plan = field_plan(mapping, source, shapes.table(destination))
    source_values = snapshot(change.row, mapping.mapped_columns(source))
    for scol in _cleared_sources(plan, cleared):
        source_values.pop(scol, None)  # carried again on the record's next change, when its lookup may resolve
    held = {**values, **dict(zip(side.key_columns, decode_key(new_key, len(side.key_columns)), strict=True))}
    back = _written_back(mapping, change, held, situation, shapes)  # e.g. a drawn line no. to the source's line
    for scol, value in _normalised(plan, change.row, shapes.table(source)).items():
        back.setdefault(scol, value)
    source_values.update(back)
    coupling = pair.change(
        source_values=source_values,
        destination_values={c: values[c] for c in mapping.mapped_columns(destination) if c in values},
    )
    writes = [Write(destination, "insert", new_key, values)]
    if back:
        writes.append(Write(source, "update", change.key, back))
    verdict = "restored" if reuse_key else "created"
    return Decision(verdict, f"{'re-created' if reuse_key else 'created'} {destination} {new_key}",
                    counts={"inserted": 1}, writes=tuple(writes), coupling=coupling, partner_key=new_key)


def _written_back(mapping: TableMapping, change: Change, created: dict[str, Any], situation: Situation,
                  shapes: Shapes) -> dict[str, Any]:
    """Fields that flow only from the partner's side back to the source, as the partner (new or matched) holds
    them: e.g. the customer no. the ERP gave a customer created from, or matched to, a CRM account."""
    source, destination = change.source, other(change.source)
    back: dict[str, Any] = {}
    for f in mapping.fields_from(destination):
        dcols = f.columns(destination)
        if f.direction == "both" or f.constant is not None or not dcols or any(c not in created for c in dcols):
            continue
        try:
            values = carry(f, destination, created, situation.lookups, shapes.table(source))
        except Unresolved:
            continue
        for scol, value in values.items():
            if canonical(value) != canonical(change.row.get(scol)):
                back[scol] = canonical(value)
    return back


def _partner_missing(mapping: TableMapping, change: Change, situation: Situation, shapes: Shapes,
                     target: dict[str, Any], coupling: CouplingLike, cleared: frozenset[str]) -> Decision:
    destination = other(change.source)
    partner_key = _key(coupling, destination)
    if mapping.deletion == "restore":
        return _create(mapping, change, situation, shapes, target, reuse_key=partner_key, cleared=cleared)
    if mapping.deletion == "fail":
        return _failure(mapping, change, coupling, f"coupled {destination} record {partner_key} no longer exists")
    if mapping.deletion == "propagate":
        # The partner's delete event is on its way and deletes this record too; uncoupling now would leave it
        # behind, uncoupled, when that event finds no coupling.
        return Decision("ignored", f"coupled {destination} record {partner_key} was deleted: its delete event "
                        "propagates", partner_key=partner_key)
    return Decision("uncoupled", f"coupled {destination} record {partner_key} no longer exists: coupling removed",
                    counts={"uncoupled": 1}, coupling=_removal(coupling), partner_key=partner_key)


def _coupled(mapping: TableMapping, change: Change, situation: Situation, target: dict[str, Any],
             coupling: CouplingLike, shapes: Shapes, cleared: frozenset[str]) -> Decision:
    partner = situation.partner
    assert partner is not None
    pair = _Keys(change.source, coupling.erp_key, coupling.crm_key, coupling)
    return _sync_fields(mapping, change, situation, target, pair, partner, shapes, cleared)


@dataclass(frozen=True)
class _Keys:
    """The two keys of a (possibly new) coupling, and the coupling as stored if it exists."""

    source: System
    erp_key: str
    crm_key: str
    stored: CouplingLike | None

    @staticmethod
    def new(mapping: TableMapping, change: Change, partner_key: str) -> _Keys:
        keys = Pair.oriented(change.source, change.key, partner_key)
        return _Keys(change.source, keys.erp, keys.crm, None)

    def key(self, system: System) -> str:
        return Pair(self.erp_key, self.crm_key)[system]

    def values(self, system: System) -> dict[str, Any]:
        if self.stored is None:
            return {}
        return dict(Pair(self.stored.erp_values, self.stored.crm_values)[system] or {})

    def change(self, *, source_values: dict[str, Any], destination_values: dict[str, Any],
               change: Change | None = None) -> CouplingChange:
        values = Pair.oriented(self.source, source_values, destination_values)
        positions: dict[str, Any] = {}
        if self.stored is not None:
            positions = {"erp_position": self.stored.erp_position, "crm_position": self.stored.crm_position}
        if change is not None and change.position:
            positions[f"{self.source}_position"] = change.position
        modified: dict[str, Any] = {}
        if change is not None and change.modified_on is not None:
            modified[f"{self.source}_modified_on"] = change.modified_on
        return CouplingChange(self.erp_key, self.crm_key, values.erp, values.crm,
                              direction=f"to_{other(self.source)}", **positions, **modified)  # type: ignore[arg-type]


def _sync_fields(mapping: TableMapping, change: Change, situation: Situation, target: dict[str, Any],
                 pair: _Keys, partner: dict[str, Any], shapes: Shapes, cleared: frozenset[str] = frozenset(), *,
                 prevails: System | None = None) -> Decision:
    """Field by field: what changed since the last sync flows; both sides changed is a conflict. `prevails`
    (after a match): the side whose values the fields both sides carry take, as if it had won a conflict."""
    source, destination = change.source, other(change.source)
    plan = field_plan(mapping, source, shapes.table(destination))
    partner_key = pair.key(destination)
    src_print, dst_print = pair.values(source), pair.values(destination)
    printed = dict(src_print)  # as last synced: a source column several routes read is compared with this
    src_now = snapshot(change.row, plan.source_columns)
    dst_now = snapshot(partner, plan.destination_columns)
    diff: dict[str, Any] = {}
    conflicts: list[Route] = []
    for route in plan.routes:
        dcol, scols = route.target, route.sources
        if dcol not in target:
            continue
        wanted = target[dcol]
        if wanted == dst_now.get(dcol):
            src_print.update({scol: src_now.get(scol) for scol in scols})
            dst_print[dcol] = wanted
            continue
        source_changed = not scols or any(scol not in printed or printed[scol] != src_now.get(scol)
                                          for scol in scols)
        if not source_changed:
            continue  # the destination's own change: its event carries it the other way
        destination_changed = dcol in dst_print and dst_print[dcol] != dst_now.get(dcol)
        if route.both_ways and (destination_changed or prevails == destination):
            conflicts.append(route)
            continue
        diff[dcol] = wanted
        src_print.update({scol: src_now.get(scol) for scol in scols})
        dst_print[dcol] = wanted

    reverse: dict[str, Any] = {}
    error = detail = None
    if conflicts:
        winner = situation.keep or prevails or _winner(mapping, change, partner)
        names = ", ".join(route.target for route in conflicts)
        if winner == source:
            for route in conflicts:
                diff[route.target] = target[route.target]
                src_print.update({scol: src_now.get(scol) for scol in route.sources})
                dst_print[route.target] = target[route.target]
        elif winner == destination:
            for route in conflicts:
                if not route.sources:
                    continue
                back = _reverse_values(route, destination, partner, situation, shapes.table(source))
                if back is None:
                    error = (f"conflict on {names}: {destination} wins but {', '.join(route.sources)} cannot be "
                             "carried back")
                    continue
                reverse.update(back)
                src_print.update(back)
                dst_print[route.target] = dst_now.get(route.target)
        else:
            pairs = [(route.sources, route.target) for route in conflicts]
            error, detail = conflict_words.describe(mapping, source, pairs, (src_print, dst_print),
                                                    (src_now, dst_now), (change.row, partner),
                                                    (pair.erp_key, pair.crm_key))
            if mapping.conflict == "fail" and pair.stored is not None:
                # the record fails whole: nothing is written, not even the fields only one side changed (merge does)
                failed = _failure(mapping, change, pair.stored, error)
                return dataclasses.replace(failed, verdict="conflict", detail=detail)
    for scol, value in _normalised(plan, change.row, shapes.table(source)).items():
        # the source's own value, as this decision took it, held normalised on its side too
        if scol not in reverse and src_print.get(scol) == src_now.get(scol):
            reverse[scol] = value
            src_print[scol] = value
    for scol in _cleared_sources(plan, cleared):
        src_print.pop(scol, None)  # carried again on the record's next change, when its lookup may resolve

    writes: list[Write] = []
    if diff:
        writes.append(Write(destination, "update", partner_key, diff))
    if reverse:
        writes.append(Write(source, "update", change.key, reverse))
    coupling = pair.change(source_values=src_print, destination_values=dst_print, change=change)
    if error is not None:
        failure = CouplingChange(**{**coupling.__dict__, "failure": error})
        return Decision("conflict", error, counts={"failed": 1}, writes=tuple(writes), coupling=failure,
                        error=error, partner_key=partner_key, detail=detail)
    if writes:
        fields = sorted(diff) + [f"{source}.{c}" for c in sorted(reverse)]
        return Decision("applied", f"wrote {', '.join(fields)}", counts={"modified": 1}, writes=tuple(writes),
                        coupling=coupling, partner_key=partner_key)
    return Decision("unchanged", "nothing to write", counts={"unchanged": 1}, coupling=coupling,
                    partner_key=partner_key)


def _reverse_values(route: Route, source: System, row: Mapping[str, Any], situation: Situation,
                    into: TableShape) -> dict[str, Any] | None:
    """The values the winning side (`source`) gives the route's columns on the other side, when a conflict goes its
    way (None: its lookup is not coupled)."""
    f = route.field
    if not f.columns(source):
        return None
    try:
        carried = carry(f, source, row, situation.lookups, into)
    except Unresolved:
        return None
    return {column: canonical(value) for column, value in carried.items() if column in route.sources}


def _winner(mapping: TableMapping, change: Change, partner: Mapping[str, Any]) -> System | None:
    policy = mapping.conflict
    if policy in ("erp-wins", "crm-wins"):
        return "erp" if policy == "erp-wins" else "crm"
    if policy == "newest-wins":
        return _newer(mapping, change, partner)
    return None  # fail, merge: overlapping changes are reported, not resolved


def _newer(mapping: TableMapping, change: Change, partner: Mapping[str, Any]) -> System:
    """The side modified last (by each side's modified-on); the source on a tie or when either is unknown."""
    destination = other(change.source)
    theirs = partner.get(mapping.side(destination).modified_on)
    ours = change.modified_on or change.row.get(mapping.side(change.source).modified_on)
    if ours is None or theirs is None:
        return change.source
    return change.source if ours >= theirs else destination


def _normalised(plan: FieldPlan, row: Mapping[str, Any], table: TableShape) -> dict[str, Any]:
    """The source's own columns whose value is not as the field's normalisation holds it: column -> the
    normalised value (canonical, as the column stores it)."""
    out: dict[str, Any] = {}
    for route in plan.normalising:
        scol = route.sources[0]
        if row.get(scol) is None:
            continue
        now = canonical(row[scol])
        column = table.columns[scol]
        value = canonical(coerce(transforms.normalise(route.normalize, row[scol]), column.type_name,
                                 column.max_length))
        if value != now:
            out[scol] = value
    return out


def _cleared_sources(plan: FieldPlan, cleared: frozenset[str]) -> list[str]:
    """The source columns of the fields a failed lookup cleared (`cleared`: their destination columns)."""
    if not cleared:
        return []
    return [scol for route in plan.routes if route.target in cleared for scol in route.sources]


def _deleted(mapping: TableMapping, change: Change, situation: Situation, shapes: Shapes) -> Decision:
    coupling = situation.coupling
    source, destination = change.source, other(change.source)
    if coupling is None:
        return Decision("ignored", "deleted record was not coupled")
    partner_key = _key(coupling, destination)
    policy = mapping.deletion
    if policy == "propagate" and mapping.allows(source):
        return Decision("deleted", f"deleted {destination} {partner_key}", counts={"deleted": 1},
                        writes=(Write(destination, "delete", partner_key),), coupling=_removal(coupling),
                        partner_key=partner_key)
    if policy == "restore" and mapping.allows(destination) and situation.partner is not None:
        restore = Change(destination, "c", partner_key, situation.partner, replay=True)
        target, missing = target_values(mapping, destination, situation.partner, shapes.table(source),
                                        situation.lookups)
        unresolved = _unresolved(mapping, restore, situation, missing)
        if unresolved is not None:
            return unresolved
        decision = _create(mapping, restore, situation, shapes, target, reuse_key=change.key,
                           cleared=frozenset(c for m in missing for c in m.columns))
        return Decision("restored", f"re-created {source} {change.key} from {destination} {partner_key}",
                        counts={"inserted": 1}, writes=decision.writes, coupling=decision.coupling,
                        partner_key=partner_key)
    if policy == "fail":
        return _failure(mapping, change, coupling, f"{source} record {change.key} was deleted while coupled "
                        f"to {destination} {partner_key}")
    return Decision("uncoupled", f"{source} record deleted: coupling to {destination} {partner_key} removed",
                    counts={"uncoupled": 1}, coupling=_removal(coupling), partner_key=partner_key)


def _waiting(missing: list[LookupNeeded]) -> Decision:
    return Decision("parked", "; ".join(str(m) for m in missing),
                    waiting=tuple(dict.fromkeys((m.mapping, m.system, m.key) for m in missing)))


def _failure(mapping: TableMapping, change: Change, coupling: CouplingLike, message: str) -> Decision:
    failure = CouplingChange(coupling.erp_key, coupling.crm_key, dict(coupling.erp_values or {}),
                             dict(coupling.crm_values or {}), coupling.erp_position, coupling.crm_position,
                             failure=message, direction=f"to_{other(change.source)}")  # type: ignore[arg-type]
    return Decision("failed", message, counts={"failed": 1}, coupling=failure, error=message,
                    partner_key=_key(coupling, other(change.source)))


def _removal(coupling: CouplingLike) -> CouplingChange:
    return CouplingChange(coupling.erp_key, coupling.crm_key, {}, {}, remove=True)


def _key(coupling: CouplingLike, system: System) -> str:
    return Pair(coupling.erp_key, coupling.crm_key)[system]


def _position(coupling: CouplingLike, system: System) -> int | None:
    return Pair(coupling.erp_position, coupling.crm_position)[system]


def _match_label(mapping: TableMapping, group: tuple[dict[str, Any], ...]) -> str:
    return "/".join(sorted({m.erp + "=" + m.crm for m in mapping.match_on}))
