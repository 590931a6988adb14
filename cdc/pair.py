"""The two systems the sync joins, and a pair of values, one per system.

`System` names a side ("erp" or "crm"); `SYSTEMS` lists both in their fixed order; `other(system)` is the opposite
side. `Pair[T]` holds one `T` per side, so a choice between an ERP and a CRM value reads `pair[system]` (or
`pair.other(system)` for the opposite side) instead of `x if system == "erp" else y`.

Pure: no I/O, usable by the engine's decisions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

System = Literal["erp", "crm"]
SYSTEMS: tuple[System, System] = ("erp", "crm")

T = TypeVar("T")


def other(system: System) -> System:
    """The opposite side: "crm" for "erp", "erp" for "crm"."""
    return "crm" if system == "erp" else "erp"


@dataclass(frozen=True, slots=True)
class Pair(Generic[T]):
    """One value per system: `.erp`, `.crm`, `pair[system]`, `pair.other(system)`."""

    erp: T
    crm: T

    @classmethod
    def oriented(cls, source: System, mine: T, theirs: T) -> Pair[T]:
        """The pair with `mine` on `source`'s side and `theirs` on the other's."""
        return cls(mine, theirs) if source == "erp" else cls(theirs, mine)

    def __getitem__(self, system: System) -> T:
        if system == "erp":
            return self.erp
        if system == "crm":
            return self.crm
        raise KeyError(system)

    def other(self, system: System) -> T:
        """The value of the opposite side of `system`."""
        return self[other(system)]
