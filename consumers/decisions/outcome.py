"""What a decision says happens: writes to apply, how the coupling changes, what to count and to report."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from cdc.pair import System

Counter = Literal["inserted", "modified", "deleted", "unchanged", "skipped", "failed", "coupled", "uncoupled"]
Verdict = Literal["applied", "unchanged", "ignored", "skipped", "parked", "conflict", "failed", "coupled",
                  "uncoupled", "deleted", "created", "restored"]


@dataclass(frozen=True)
class Write:
    """One row to write into a system table; values are canonical (see decisions.values)."""

    system: System
    kind: Literal["insert", "update", "delete"]
    key: str
    values: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CouplingChange:
    """The coupling after the decision: fingerprints are per column, as last synced."""

    erp_key: str
    crm_key: str
    erp_values: dict[str, Any]
    crm_values: dict[str, Any]
    erp_position: int | None = None
    crm_position: int | None = None
    erp_modified_on: datetime | None = None
    crm_modified_on: datetime | None = None
    remove: bool = False
    failure: str | None = None
    direction: Literal["to_crm", "to_erp"] | None = None


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reason: str = ""
    counts: dict[Counter, int] = field(default_factory=dict)
    writes: tuple[Write, ...] = ()
    coupling: CouplingChange | None = None
    error: str | None = None
    partner_key: str | None = None
    waiting: tuple[tuple[str, System, str], ...] = ()
    """Parked (or failed) for these lookups (mapping, system, key) that are not coupled yet."""
    detail: str | None = None
    """What an operator reads beyond the one-line error (a conflict: the records, the values, how to resolve)."""
    recheck_partner: bool = False
    """The pair was failing (or skipped) and this decision settled it: the partner record is decided again, since
    its own change may have been consumed by the failure (e.g. the losing side of a conflict made to agree)."""
    needs_key: bool = False
    """A creation on a side whose keys come from its number series, decided without a key: it is decided again
    with one allocated (`consumers.series`); never applied as it is."""

    @property
    def counted(self) -> bool:
        return bool(self.counts)
