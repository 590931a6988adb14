"""Carrying a record's fields across: typing the source row, and computing what the destination should hold."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cdc.mapping import transforms
from cdc.mapping.model import FieldMapping, TableMapping, other
from cdc.settings import System
from consumers.decisions.plan import TableShape, field_plan
from consumers.decisions.values import CoercionError, canonical, coerce

LookupKey = tuple[str, System, str]


@dataclass(frozen=True)
class LookupNeeded:
    """A lookup field whose referenced record is not coupled (yet): the change waits for it, fails, or writes the
    field cleared, as the field's `on_lookup_failure` says (`policy`)."""

    mapping: str
    system: System
    key: str
    field: str
    policy: str = "wait"
    column: str = ""
    """The destination column the field writes."""

    def __str__(self) -> str:
        if self.policy == "wait":
            return f"{self.field}: {self.system} record {self.key!r} is not coupled in {self.mapping} yet"
        return f"{self.field}: {self.system} record {self.key!r} is not coupled in {self.mapping}"


def typed_row(row: Mapping[str, Any], table: TableShape, columns: list[str]) -> dict[str, Any]:
    """The named columns of an event row typed as the table declares them (CoercionError when impossible)."""
    typed: dict[str, Any] = {}
    for name in columns:
        if name in row:
            column = table.columns[name]
            typed[name] = coerce(row[name], column.type_name)
    return typed


def snapshot(row: Mapping[str, Any], columns: list[str]) -> dict[str, Any]:
    """Canonical values of the named columns (the fingerprint of one side)."""
    return {name: canonical(row[name]) for name in columns if name in row}


def lookup_needs(mapping: TableMapping, source: System, row: Mapping[str, Any]) -> list[tuple[str, System, str]]:
    """The (mapping, system, key) lookups that carrying `row` from `source` requires."""
    needs = []
    for lookup, column in _lookup_columns(mapping, source):
        value = row.get(column)
        if value is not None:
            needs.append((lookup, source, str(canonical(value))))
    return needs


_LOOKUPS: dict[tuple[int, str], tuple[TableMapping, tuple[tuple[str, str], ...]]] = {}


def _lookup_columns(mapping: TableMapping, source: System) -> tuple[tuple[str, str], ...]:
    """(lookup mapping, source column) of the fields carried from `source` through a lookup, worked out once."""
    cached = _LOOKUPS.get((id(mapping), source))
    if cached is not None and cached[0] is mapping:
        return cached[1]
    found = tuple((f.lookup, column) for f in mapping.fields_from(source)
                  if f.lookup and (column := f.column(source)) is not None)
    _LOOKUPS[(id(mapping), source)] = (mapping, found)
    return found


def target_values(mapping: TableMapping, source: System, row: Mapping[str, Any], destination: TableShape,
                  lookups: Mapping[LookupKey, str]) -> tuple[dict[str, Any], list[LookupNeeded]]:
    """What each destination column written from `source` should hold, canonical, plus unresolved lookups.

    A lookup whose field says `on_lookup_failure: clear` is listed too, and its column holds the cleared value."""
    plan = field_plan(mapping, source, destination)
    values: dict[str, Any] = {}
    missing: list[LookupNeeded] = []
    for route in plan.routes:
        if route.constant is not None:
            value = route.constant
        else:
            value = row.get(route.source)  # type: ignore[arg-type]
            if route.lookup:
                if value is not None:
                    key = str(canonical(value))
                    partner = lookups.get((route.lookup, source, key))
                    if partner is None:
                        missing.append(LookupNeeded(route.lookup, source, key, route.field.label,
                                                    route.lookup_failure, route.target))
                        if route.lookup_failure != "clear":
                            continue
                    value = partner if partner is not None else route.cleared
            else:
                if route.steps:
                    value = transforms.apply(route.steps, value)
                if route.mapped:
                    value = transforms.map_value(route.field, value, plan.destination)
                if route.normalize:
                    value = transforms.normalise(route.normalize, value)
        if route.type_name is None:  # dropped or renamed since the mapping was written: this record fails
            raise CoercionError(f"{mapping.name}: {plan.destination} column {route.target!r} not found "
                                f"(field {route.field.label}); fix the table or the mapping, then cdc retry")
        try:
            typed = coerce(value, route.type_name, route.max_length, route.scale)
        except CoercionError as exc:
            raise CoercionError(f"{mapping.name}: {plan.destination} column {route.target!r} ({route.type_name}) "
                                f"cannot hold the value of {plan.source} column {route.source!r}: {exc}") from None
        if typed is None and route.not_null:
            continue
        values[route.target] = canonical(typed)
    return values, missing


class Unresolved(Exception):
    def __init__(self, need: LookupNeeded) -> None:
        self.need = need


def carry(f: FieldMapping, source: System, row: Mapping[str, Any], lookups: Mapping[LookupKey, str]) -> Any:
    """One field's value on its way from `source` to the other side (before typing for the destination)."""
    destination = other(source)
    if f.constant is not None:
        return f.constant
    column = f.column(source)
    assert column is not None
    value = row.get(column)
    if f.lookup:
        if value is None:
            return None
        key = str(canonical(value))
        partner = lookups.get((f.lookup, source, key))
        if partner is None:
            raise Unresolved(LookupNeeded(f.lookup, source, key, f.label, f.on_lookup_failure,
                                          f.column(destination) or ""))
        return partner
    steps = f.to_crm if destination == "crm" else f.to_erp
    if steps:
        value = transforms.apply(steps, value)
    if f.value_map is not None:
        value = transforms.map_value(f, value, destination)
    if f.normalize:
        value = transforms.normalise(f.normalize, value)
    return value
