"""`cdc verify`: compare both systems through the couplings, per mapping.

Four kinds of divergence:
- **differences**: coupled pairs whose mapped fields differ — for each field flowing in the mapping's
  direction(s), the value the sync would write (`consumers.decisions.fields.target_values`, canonical) against
  the value the other side holds; a field flowing both ways is in sync when either way finds it equal;
- **missing**: in-filter records that should be coupled but are not — checked only for a side the mapping
  creates from, and only when creation is allowed: "only coupled" effectively off, or the record existed when
  the last full sync of that direction started. A record whose lookup points to a record that is not coupled
  (e.g. a contact of a customer outside the customer filter) cannot sync: it is listed as *blocked*, not as a
  divergence (its error is on the job, and the missing parent, if it should be coupled, is counted itself);
  so is a record with a parked change (`cdc parked`), coupled or not, and a coupled pair that differs because a
  side's lookup is not coupled: each waits for something, and says what;
- **duplicates**: a match value (the mapping's match fields, by priority) held by in-filter records on both
  sides, more of them on one side than on the other — at least one record cannot have its own partner (blocked
  records are left out: they are listed as blocked);
- **orphans**: couplings whose ERP or CRM record no longer exists.

The comparison core (`compare_pair`, `duplicate_groups`, `expects_coupling`) is pure.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cdc.mapping.filters import FilterValueError, matches
from cdc.mapping.model import MappingFile, MatchField, TableMapping
from cdc.orchestrator import runs
from cdc.orchestrator.links import ReadOnly, read_only
from cdc.orchestrator.plan import select
from cdc.orchestrator.progress import plain
from cdc.orchestrator.sources import SideRows
from cdc.pair import SYSTEMS, System, other
from cdc.settings import Settings
from cdc.state import couplings, mapping_settings, parking
from consumers import (
    MATCH_SEPARATOR,
    LookupKey,
    Shapes,
    lookup_needs,
    match_key,
    resolve_lookups,
    snapshot,
    target_values,
)

# ---------------------------------------------------------------- findings

@dataclass(frozen=True)
class FieldDifference:
    column: str
    """The destination column, as `direction` writes it."""
    direction: str
    expected: Any
    actual: Any


@dataclass(frozen=True)
class PairDifference:
    erp_key: str
    crm_key: str
    fields: tuple[FieldDifference, ...]


@dataclass(frozen=True)
class Uncoupled:
    system: System
    key: str
    reason: str


@dataclass(frozen=True)
class DuplicateGroup:
    match: str
    value: str
    erp_keys: tuple[str, ...]
    crm_keys: tuple[str, ...]


@dataclass(frozen=True)
class Orphan:
    erp_key: str
    crm_key: str
    gone: str


@dataclass
class MappingCheck:
    mapping: str
    pairs: int = 0
    differences: list[PairDifference] = field(default_factory=list)
    missing: list[Uncoupled] = field(default_factory=list)
    blocked: list[Uncoupled] = field(default_factory=list)
    duplicates: list[DuplicateGroup] = field(default_factory=list)
    orphans: list[Orphan] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def diverges(self) -> bool:
        return bool(self.differences or self.missing or self.duplicates or self.orphans)

    def summary(self) -> dict[str, int]:
        return {"pairs": self.pairs, "differences": len(self.differences), "missing": len(self.missing),
                "duplicates": len(self.duplicates), "orphans": len(self.orphans), "blocked": len(self.blocked)}


@dataclass
class VerifyReport:
    checks: list[MappingCheck]
    cancelled: bool = False

    @property
    def diverges(self) -> bool:
        return self.cancelled or any(check.diverges for check in self.checks)

    def as_json(self) -> dict[str, Any]:
        return {"diverges": self.diverges, "cancelled": self.cancelled,
                "mappings": [{"mapping": c.mapping, "diverges": c.diverges, "counts": c.summary(),
                              "differences": plain(c.differences), "missing": plain(c.missing),
                              "blocked": plain(c.blocked), "duplicates": plain(c.duplicates),
                              "orphans": plain(c.orphans), "notes": c.notes} for c in self.checks]}


# ---------------------------------------------------------------- the pure core

def compare_pair(mapping: TableMapping, erp_row: Mapping[str, Any], crm_row: Mapping[str, Any], shapes: Shapes,
                 lookups: Mapping[LookupKey, str]) -> list[FieldDifference]:
    """The mapped fields of a coupled pair that differ from what the sync would write.

    Only directions the mapping carries, only from a side whose record is in its filter (the sync ignores the
    others). A field flowing both ways is reported once, when the first direction that can compare it differs
    — that is, once per field, ERP → CRM first; a normalised field only when both sides hold its normalised
    value byte for byte. Fields whose lookup is not coupled cannot be compared (and one that the sync clears for
    that reason is compared neither way).
    """
    rows: dict[System, Mapping[str, Any]] = {"erp": erp_row, "crm": crm_row}
    found: list[FieldDifference] = []
    carried: dict[System, tuple[dict[str, Any], dict[str, Any]]] = {}  # source -> (expected, actual) by column
    cleared: set[tuple[tuple[str, ...], tuple[str, ...]]] = set()  # fields, by their (ERP, CRM) columns
    for source in SYSTEMS:
        if not mapping.allows(source):
            continue
        try:
            if not matches(mapping.side(source).filter, rows[source]):
                continue
        except FilterValueError:
            continue
        destination = other(source)
        try:
            expected, missing = target_values(mapping, source, rows[source], shapes.table(destination), lookups)
            for need in missing:  # a field cleared because its lookup is not coupled is not compared, either way
                for column in need.columns:
                    expected.pop(column, None)
                if need.policy == "clear":
                    cleared.update((f.columns("erp"), f.columns("crm")) for f in mapping.fields_from(source)
                                   if f.columns(destination) == need.columns)
        except ValueError as exc:
            found.append(FieldDifference("*", f"to_{destination}", f"cannot be carried: {exc}", None))
            continue
        carried[source] = (expected, snapshot(rows[destination], list(expected)))
    settled = set(cleared)
    for source, (expected, actual) in carried.items():
        destination = other(source)
        for f in mapping.fields_from(source):
            columns = f.columns(destination)
            identity = (f.columns("erp"), f.columns("crm"))
            if not columns or any(c not in expected for c in columns) or identity in settled:
                continue
            settled.add(identity)
            if all(expected[c] == actual.get(c) for c in columns):
                continue
            # A field carried both ways agrees when either way does: e.g. 574.185 in a 4-decimal column and
            # 574.19 in a 2-decimal one — the CRM value carried to the ERP is exactly what the ERP holds.
            # Not for a normalised field: both sides hold the normalised value byte for byte, or they differ.
            back = carried.get(destination)
            sources = f.columns(source)
            if back is not None and f.direction == "both" and not f.normalize and sources and \
                    all(c in back[0] and back[0][c] == back[1].get(c) for c in sources):
                continue
            found += [FieldDifference(c, f"to_{destination}", expected[c], actual.get(c)) for c in columns
                      if expected[c] != actual.get(c)]
    return found


def expects_coupling(only_coupled: bool, last_full_start: datetime | None, modified_on: datetime | None) -> bool:
    """Whether an uncoupled in-filter record of a side the mapping creates from should have been coupled."""
    if not only_coupled:
        return True
    if last_full_start is None:
        return False
    return modified_on is None or modified_on <= last_full_start


def duplicate_groups(match_on: list[MatchField], erp: Iterable[tuple[str, Mapping[str, Any]]],
                     crm: Iterable[tuple[str, Mapping[str, Any]]]) -> list[DuplicateGroup]:
    """Per match priority: values held on both sides by more records on one side than on the other."""
    erp_rows, crm_rows = list(erp), list(crm)
    groups: list[DuplicateGroup] = []
    for priority in sorted({f.priority for f in match_on}):
        fields = [f for f in match_on if f.priority == priority]
        label = "+".join(f"{f.erp}={f.crm}" for f in fields)
        sides: dict[System, dict[str, list[str]]] = {"erp": defaultdict(list), "crm": defaultdict(list)}
        for system, rows in (("erp", erp_rows), ("crm", crm_rows)):
            for key, row in rows:
                value = match_key(fields, system, row)  # type: ignore[arg-type]
                if value is not None:
                    sides[system][value].append(key)  # type: ignore[index]
        for value, erp_keys in sides["erp"].items():
            crm_keys = sides["crm"].get(value)
            if crm_keys and len(erp_keys) != len(crm_keys) and max(len(erp_keys), len(crm_keys)) > 1:
                groups.append(DuplicateGroup(label, value.replace(MATCH_SEPARATOR, " + "), tuple(sorted(erp_keys)),
                                             tuple(sorted(crm_keys))))
    return groups


# ---------------------------------------------------------------- reading both systems

async def verify(settings: Settings, mapping_file: MappingFile, *, only: str | None = None,
                 stop: asyncio.Event | None = None, chunk: int = 2000) -> VerifyReport:
    stop = stop or asyncio.Event()
    report = VerifyReport([])
    async with read_only(settings, mapping_file) as ro:
        only_coupled = await mapping_settings.effective_sync_only_coupled(ro.state, mapping_file)
        for mapping in select(mapping_file, only):
            check = MappingCheck(mapping.name)
            report.checks.append(check)
            waiting = {record: f"a change waits (parked): {reason}"
                       for record, reason in (await parking.records(ro.state, mapping.name)).items()}
            await _pairs(ro, mapping, check, chunk, stop, waiting)
            for system in SYSTEMS:
                if mapping.allows(system) and not stop.is_set():
                    await _missing(ro, mapping, system, only_coupled.get(mapping.name, True), check, stop,
                                   waiting)
            listed = {(b.system, b.key) for b in check.blocked}
            check.blocked += [Uncoupled(system, key, reason) for (system, key), reason in sorted(waiting.items())
                              if (system, key) not in listed and not stop.is_set()]
            if mapping.match_on and not stop.is_set():
                # a blocked record cannot be coupled (its lookup is not): it is listed as blocked, and a partner
                # the sync created for its twin on the other side is no duplicate of the sync's making
                blocked = {(b.system, b.key) for b in check.blocked}
                check.duplicates = duplicate_groups(
                    mapping.match_on,
                    [(k, r) for k, r in await _match_rows(ro, mapping, "erp") if ("erp", k) not in blocked],
                    [(k, r) for k, r in await _match_rows(ro, mapping, "crm") if ("crm", k) not in blocked])
            if stop.is_set():
                report.cancelled = True
                break
    return report


async def _pairs(ro: ReadOnly, mapping: TableMapping, check: MappingCheck, chunk: int,
                 stop: asyncio.Event, waiting: Mapping[tuple[System, str], str]) -> None:
    shapes = ro.shapes(mapping)
    erp_table, crm_table = mapping.erp.table, mapping.crm.table
    after = ""
    while not stop.is_set():
        page = await ro.state.fetch("SELECT erp_key, crm_key FROM cdc.couplings WHERE mapping = $1 AND erp_key > $2 "
                                    "ORDER BY erp_key LIMIT $3", mapping.name, after, chunk)
        if not page:
            return
        after = page[-1]["erp_key"]
        erp_rows = await ro.links["erp"].rows_by_key(erp_table, [r["erp_key"] for r in page])
        crm_rows = await ro.links["crm"].rows_by_key(crm_table, [r["crm_key"] for r in page])
        needs: set[LookupKey] = set()
        for rows, system in ((erp_rows, "erp"), (crm_rows, "crm")):
            for row in rows.values():
                needs.update(lookup_needs(mapping, system, row))  # type: ignore[arg-type]
        lookups = await resolve_lookups(ro.state, needs)
        for r in page:
            erp_row, crm_row = erp_rows.get(r["erp_key"]), crm_rows.get(r["crm_key"])
            if erp_row is None or crm_row is None:
                gone = "both" if erp_row is None and crm_row is None else "erp" if erp_row is None else "crm"
                check.orphans.append(Orphan(r["erp_key"], r["crm_key"], gone))
                continue
            check.pairs += 1
            sides: list[tuple[System, str]] = [("erp", r["erp_key"]), ("crm", r["crm_key"])]
            held = [side for side in sides if side in waiting]
            if held:  # its change is still to come: not a divergence
                check.blocked += [Uncoupled(system, key, waiting[(system, key)]) for system, key in held]
                continue
            differences = compare_pair(mapping, erp_row, crm_row, shapes, lookups)
            if not differences:
                continue
            stuck = _not_coupled(ro, mapping, {"erp": erp_row, "crm": crm_row}, lookups)
            if stuck:  # a side's lookup is not coupled: the pair cannot sync until it is (its error says so)
                check.blocked += [Uncoupled(system, r[f"{system}_key"], reason) for system, reason in stuck]
                continue
            check.differences.append(PairDifference(r["erp_key"], r["crm_key"], tuple(differences)))


def _not_coupled(ro: ReadOnly, mapping: TableMapping, rows: Mapping[System, Mapping[str, Any]],
                 lookups: Mapping[LookupKey, str]) -> list[tuple[System, str]]:
    """The sides of a pair the mapping carries from whose lookups are not coupled, with what is not."""
    stuck: list[tuple[System, str]] = []
    for system in SYSTEMS:
        if not mapping.allows(system):
            continue
        try:
            if not matches(mapping.side(system).filter, rows[system]):
                continue
        except FilterValueError:
            continue
        unresolved = [n for n in lookup_needs(mapping, system, rows[system]) if n not in lookups]
        if unresolved:
            stuck.append((system, "; ".join(f"{ro.table_name(n[0], n[1])} {n[2]} is not coupled in {n[0]}"
                                            for n in unresolved)))
    return stuck


async def _missing(ro: ReadOnly, mapping: TableMapping, system: System, only_coupled: bool, check: MappingCheck,
                   stop: asyncio.Event, waiting: Mapping[tuple[System, str], str]) -> None:
    direction = f"to_{other(system)}"
    full_start = await runs.last_full_start(ro.state, mapping.name, direction)
    if only_coupled and full_start is None:
        check.notes.append(f"{system} side: not checked for missing couplings ('only coupled' is on and no full "
                           "sync has run)")
        return
    rows_of = SideRows(mapping, system, ro.table(mapping, system))
    modified_on = mapping.side(system).modified_on
    async with ro.links[system].reader.acquire() as conn:
        async with rows_of.snapshot(conn) as (_, chunks):
            async for rows in chunks:
                keyed = {rows_of.key_of(row): row for row in rows}
                coupled = await couplings.fetch_by_keys(ro.state, mapping.name, system, list(keyed))
                uncoupled = {key: row for key, row in keyed.items() if key not in coupled
                             and expects_coupling(only_coupled, full_start, row.get(modified_on))}
                needs = {key: lookup_needs(mapping, system, row) for key, row in uncoupled.items()}
                lookups = await resolve_lookups(ro.state, {n for ns in needs.values() for n in ns})
                for key in uncoupled:
                    unresolved = [n for n in needs[key] if n not in lookups]
                    if (system, key) in waiting:
                        check.blocked.append(Uncoupled(system, key, waiting[(system, key)]))
                    elif unresolved:
                        reason = "; ".join(f"{ro.table_name(n[0], n[1])} {n[2]} is not coupled in {n[0]}"
                                           for n in unresolved)
                        check.blocked.append(Uncoupled(system, key, reason))
                    else:
                        check.missing.append(Uncoupled(system, key, "in the filter but not coupled"))
                if stop.is_set():
                    return


async def _match_rows(ro: ReadOnly, mapping: TableMapping, system: System) -> list[tuple[str, dict[str, Any]]]:
    rows_of = SideRows(mapping, system, ro.table(mapping, system))
    columns = list(dict.fromkeys([*rows_of.key_columns, *(f.column(system) for f in mapping.match_on)]))
    sql, params = rows_of.select(columns)
    async with ro.links[system].reader.acquire() as conn:
        rows = await conn.fetch(sql, *params)
    return [(rows_of.key_of(row), dict(row)) for row in rows]
