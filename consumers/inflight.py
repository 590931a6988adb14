"""A change in flight through one batch: the object each stage of the batch reads and fills in (`consumers.batch`).

One per change, from the event to what is recorded about it: `load` re-reads its record (or decides it is not
decided: gone, or behind a parked change), `situate` gives it its situation, `decide` and `settle` its decision,
`write` the destination's refusal, if any, which `settle` turns into its decision too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cdc.mapping.model import TableMapping
from cdc.pair import System
from consumers.appliers.writer import Refusal
from consumers.decisions.outcome import Decision
from consumers.decisions.record import Change, Situation
from consumers.incoming import Incoming


@dataclass(slots=True, eq=False, repr=False)
class InFlight:
    item: Incoming
    """The change event; its change's row is the record as `load` last read it."""
    position: int
    """Its place in its round: a group decides, writes and records its changes in this order."""
    situation: Situation = field(init=False)
    """What `decide` needs to know besides the record (coupling, partner row, lookups, candidates)."""
    decision: Decision = field(init=False)
    """What happens to it: `decide`'s verdict as `settle` left it."""
    refusal: Refusal | None = None
    """Why the destination refused its writes, until `settle` makes it the decision."""

    @property
    def change(self) -> Change:
        return self.item.change

    @property
    def mapping(self) -> TableMapping:
        return self.item.mapping

    @property
    def source(self) -> System:
        return self.item.change.source

    @property
    def key(self) -> str:
        return self.item.change.key

    def __repr__(self) -> str:
        decision = getattr(self, "decision", None)
        return (f"InFlight({self.position}, {self.item.mapping.name} {self.source} {self.key!r}: "
                f"{decision.verdict if decision is not None else 'not decided'})")


def rounds(items: list[Incoming]) -> list[list[InFlight]]:
    """The batch in rounds of at most one change per record: later changes see the earlier ones' effects."""
    out: list[list[InFlight]] = []
    seen: dict[tuple[str, str, str], int] = {}
    for item in items:
        identity = (item.mapping.name, item.source, item.change.key)
        n = seen.get(identity, -1) + 1
        seen[identity] = n
        if n == len(out):
            out.append([])
        out[n].append(InFlight(item, len(out[n])))
    return out
