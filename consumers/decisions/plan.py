"""A mapping's fields compiled once per direction and destination table: what each record's decision walks.

`TableMapping.fields_from` says which fields carry values from a side; the decision then asks, for every record
and every field, for the columns on each side, the transforms, the value map, the destination column's type and
length. None of that changes between records, so it is worked out once here (per mapping, source system and
destination table shape) into a tuple of `Route`s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from cdc.mapping.model import FieldMapping, TableMapping, Transform
from cdc.pair import System, other


class ColumnShape(Protocol):
    @property
    def type_name(self) -> str: ...
    @property
    def max_length(self) -> int | None: ...


class TableShape(Protocol):
    @property
    def columns(self) -> Mapping[str, ColumnShape]: ...


@dataclass(frozen=True)
class Route:
    """One field on its way from the source system to the destination: everything the carrying needs."""

    field: FieldMapping
    sources: tuple[str, ...]
    """The source columns: one, none for a constant, several for a lookup to a composite key (its key text)."""
    target: str
    """The destination column."""
    constant: Any
    lookup: str | None
    steps: tuple[Transform, ...]
    mapped: bool
    """Whether a value map applies."""
    type_name: str | None
    """The destination column's type (None: the column does not exist in the destination table)."""
    max_length: int | None
    scale: int | None
    not_null: bool
    both_ways: bool
    """Both the field and the mapping go both ways: a change on each side since the last sync is a conflict."""
    normalize: tuple[Transform, ...] = ()
    """The field's normalisation: the value both sides hold (applied after `steps`)."""
    lookup_failure: str = "wait"
    """With a lookup: what a key that is not coupled does (wait, fail, clear)."""
    cleared: Any = None
    """What `clear` writes: the destination side's default for the column, else null."""
    part: int = 0
    """A lookup writing several destination columns (one route each): which column of the partner's key this
    route's is; the route of part 0 reports the lookup when it is not coupled."""
    parts: int = 1
    """How many destination columns the field writes (the partner's key columns)."""


@dataclass(frozen=True)
class FieldPlan:
    source: System
    destination: System
    routes: tuple[Route, ...]
    source_columns: tuple[str, ...]
    """The source side's fingerprint columns."""
    destination_columns: tuple[str, ...]
    normalising: tuple[Route, ...] = ()
    """The routes of normalised fields (most mappings have none: nothing to look at for a record)."""


_PLANS: dict[tuple[int, str, int], tuple[TableMapping, TableShape, FieldPlan]] = {}


def field_plan(mapping: TableMapping, source: System, destination: TableShape) -> FieldPlan:
    """The plan of `mapping`'s fields from `source` into the `destination` table (built once, then cached)."""
    key = (id(mapping), source, id(destination))
    cached = _PLANS.get(key)
    if cached is not None and cached[0] is mapping and cached[1] is destination:
        return cached[2]
    plan = _compile(mapping, source, destination)
    if len(_PLANS) > 4096:
        _PLANS.clear()
    _PLANS[key] = (mapping, destination, plan)
    return plan


def _compile(mapping: TableMapping, source: System, destination: TableShape) -> FieldPlan:
    towards = other(source)
    routes = []
    for f in mapping.fields_from(source):
        targets = f.columns(towards)
        assert targets
        for part, target in enumerate(targets):
            column = destination.columns.get(target)
            routes.append(Route(
                field=f, sources=f.columns(source), target=target, constant=f.constant, lookup=f.lookup,
                steps=tuple(f.transforms(towards)), mapped=f.value_map is not None,
                type_name=None if column is None else column.type_name,
                max_length=None if column is None else column.max_length,
                scale=None if column is None else getattr(column, "scale", None), not_null=f.not_null,
                both_ways=f.direction == "both" and mapping.direction == "both", normalize=tuple(f.normalize),
                lookup_failure=f.on_lookup_failure, cleared=mapping.side(towards).defaults.get(target),
                part=part, parts=len(targets)))
    return FieldPlan(source, towards, tuple(routes), tuple(mapping.mapped_columns(source)),
                     tuple(mapping.mapped_columns(towards)),
                     tuple(r for r in routes if r.normalize and r.sources))
