"""Carrying a record's fields across: typing the source row, and computing what the destination should hold."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cdc.mapping import transforms
from cdc.mapping.model import FieldMapping, TableMapping
from cdc.pair import System, other
from cdc.values import CoercionError, canonical, coerce, key_text
from consumers.decisions.plan import TableShape, field_plan
from schemas.key_text import KeyTextError
from schemas.key_text import decode as decode_key

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
    columns: tuple[str, ...] = ()
    """The destination columns the field writes (several: the partner's composite key)."""

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
    for lookup, columns in _lookup_columns(mapping, source):
        key = reference(row, columns)
        if key is not None:
            needs.append((lookup, source, key))
    return needs


def reference(row: Mapping[str, Any], columns: tuple[str, ...]) -> str | None:
    """The key text of the record a lookup's columns reference, as couplings name it (`schemas.key_text` of the
    columns' canonical texts, in the referenced key's order); None when a column is null: no reference."""
    if any(row.get(column) is None for column in columns):
        return None
    return key_text(row, columns)


def partner_parts(f: FieldMapping, partner: str, parts: int) -> tuple[str, ...]:
    """The column texts of the partner key a lookup found (CoercionError when it has not as many columns as the
    field names)."""
    try:
        return decode_key(partner, parts)
    except KeyTextError as exc:
        raise CoercionError(f"field {f.label}: the key {f.lookup} couples it to is not one of {parts} columns: "
                            f"{exc}") from None


_LOOKUPS: dict[tuple[int, str], tuple[TableMapping, tuple[tuple[str, tuple[str, ...]], ...]]] = {}


def _lookup_columns(mapping: TableMapping, source: System) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(lookup mapping, source columns) of the fields carried from `source` through a lookup, worked out once."""
    cached = _LOOKUPS.get((id(mapping), source))
    if cached is not None and cached[0] is mapping:
        return cached[1]
    found = tuple((f.lookup, columns) for f in mapping.fields_from(source)
                  if f.lookup and (columns := f.columns(source)))
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
        elif route.lookup:
            key = reference(row, route.sources)
            value = None
            if key is not None:
                partner = lookups.get((route.lookup, source, key))
                if partner is None:
                    if route.part == 0:
                        missing.append(LookupNeeded(route.lookup, source, key, route.field.label,
                                                    route.lookup_failure, route.field.columns(plan.destination)))
                    if route.lookup_failure != "clear":
                        continue
                    value = route.cleared
                else:
                    value = partner_parts(route.field, partner, route.parts)[route.part]
        else:
            value = row.get(route.sources[0])
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
            named = ", ".join(repr(column) for column in route.sources) or "None"
            raise CoercionError(f"{mapping.name}: {plan.destination} column {route.target!r} ({route.type_name}) "
                                f"cannot hold the value of {plan.source} column {named}: {exc}") from None
        if typed is None and route.not_null:
            continue
        values[route.target] = canonical(typed)
    return values, missing


class Unresolved(Exception):
    def __init__(self, need: LookupNeeded) -> None:
        self.need = need


def carry(f: FieldMapping, source: System, row: Mapping[str, Any], lookups: Mapping[LookupKey, str],
          into: TableShape) -> dict[str, Any]:
    """One field's values on their way from `source` into the other side's table `into`, by column (before
    typing; a lookup's partner key typed as the columns it goes into, so that it compares with what they hold)."""
    destination = other(source)
    targets = f.columns(destination)
    if f.constant is not None:
        return dict.fromkeys(targets, f.constant)
    if f.lookup:
        key = reference(row, f.columns(source))
        if key is None:
            return dict.fromkeys(targets)
        partner = lookups.get((f.lookup, source, key))
        if partner is None:
            raise Unresolved(LookupNeeded(f.lookup, source, key, f.label, f.on_lookup_failure, targets))
        texts = partner_parts(f, partner, len(targets))
        return {column: _typed(text, into, column) for column, text in zip(targets, texts, strict=True)}
    value = row.get(f.columns(source)[0])
    steps = f.transforms(destination)
    if steps:
        value = transforms.apply(steps, value)
    if f.value_map is not None:
        value = transforms.map_value(f, value, destination)
    if f.normalize:
        value = transforms.normalise(f.normalize, value)
    return {targets[0]: value}


def _typed(text: str, table: TableShape, column: str) -> Any:
    shape = table.columns.get(column)
    return text if shape is None else coerce(text, shape.type_name)
