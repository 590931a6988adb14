"""Which sides of which mappings a run replays, in dependency order: a pure function of the mapping file.

A mapping's ERP side is replayed when the mapping carries changes from the ERP (direction both or to_crm), its
CRM side when it carries them from the CRM; the ERP side goes first. Mappings come in dependency order, so the
records a lookup points to are coupled before the records that point to them are replayed.
"""

from __future__ import annotations

from dataclasses import dataclass

from cdc.errors import ConfigError
from cdc.mapping.model import MappingFile, TableMapping
from cdc.mapping.order import dependency_order
from cdc.pair import SYSTEMS, System, other
from cdc.state.jobs import JobDirection


@dataclass(frozen=True)
class Step:
    """Replay one side of one mapping."""

    mapping: TableMapping
    source: System

    @property
    def direction(self) -> JobDirection:
        return "to_crm" if self.source == "erp" else "to_erp"

    @property
    def destination(self) -> System:
        return other(self.source)

    @property
    def label(self) -> str:
        return f"{self.mapping.name} {self.source.upper()} → {self.destination.upper()}"


def select(mapping_file: MappingFile, only: str | None = None) -> list[TableMapping]:
    """The mappings of a run in dependency order: all of them, or the one named `only`."""
    ordered = dependency_order(mapping_file)
    if only is None:
        return ordered
    chosen = [m for m in ordered if m.name == only]
    if not chosen:
        names = ", ".join(m.name for m in ordered)
        raise ConfigError(f"no mapping named {only!r}; the mapping file has {names}")
    return chosen


def steps_of(mapping: TableMapping) -> list[Step]:
    """ERP side first, then the CRM side; only the sides the mapping's direction carries from."""
    return [Step(mapping, system) for system in SYSTEMS if mapping.allows(system)]


def plan(mapping_file: MappingFile, only: str | None = None) -> list[Step]:
    return [step for m in select(mapping_file, only) for step in steps_of(m)]
